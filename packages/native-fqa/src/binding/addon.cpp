// The thin Node-API layer over the C++ core. TypeScript (lib/) owns options, defaults and user
// facing validation; this file only converts arguments, and still checks every type, length and
// size it relies on so that a bad call is a TypeError/RangeError naming the argument, not a crash.
//
// Threading model: sweep() runs on a libuv worker (Napi::AsyncWorker) and spreads its bands over
// its own C++ threads, so a single call uses every core without blocking the event loop.
// sweepSync() is for callers that already are a worker thread (a Piscina pool over regions): it
// runs on the calling thread with the thread count the caller gives, normally 1, so a pool of N
// workers never runs N multithreaded native calls at once.
#include <napi.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>
#include <array>

#include "gpu.h"
#include "focuslitenn_train.h"
#include "openslide_reader.h"
#ifdef FQA_HAVE_TIFF_JPEG
#include "jpeg_encode.h"
#include "region_sweep.h"
#include "tiff_jpeg_reader.h"
#endif
#include "call_args.h"
#include "checked.h"
#include "model.h"
#include "sweep.h"

namespace {

using fqa::Kernel;

// Constructors live per Node environment (main thread and every worker thread load the addon
// into their own environment), never in statics shared between them.
struct AddonData {
  Napi::FunctionReference modelConstructor;
  Napi::FunctionReference slideConstructor;
};
AddonData& addonData(const Napi::Env& env) { return *env.GetInstanceData<AddonData>(); }

// Runs fn and turns C++ exceptions into the matching JS error class.
template <typename Fn>
Napi::Value guarded(const Napi::Env& env, Fn fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(env, e.what());
  } catch (const std::range_error& e) {
    throw Napi::RangeError::New(env, e.what());
  } catch (const std::out_of_range& e) {
    throw Napi::RangeError::New(env, e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

// A count computed with checked arithmetic (checked.h): its std::range_error becomes a RangeError.
template <typename Fn>
int64_t guardedCount(const Napi::Env& env, Fn fn) {
  int64_t out = 0;
  guarded(env, [&]() -> Napi::Value {
    out = fn();
    return env.Undefined();
  });
  return out;
}

Napi::Value field(const Napi::Object& o, const std::string& name) {
  return o.Get(name);
}

double number(const Napi::Env& env, const Napi::Value& v, const std::string& name) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, "Expected number for " + name);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw Napi::TypeError::New(env, "Expected finite number for " + name);
  return d;
}

int64_t integer(const Napi::Env& env, const Napi::Value& v, const std::string& name, int64_t lo, int64_t hi) {
  double d = number(env, v, name);
  if (d != std::floor(d) || d < double(lo) || d > double(hi))
    throw Napi::RangeError::New(env, "Expected integer between " + std::to_string(lo) + " and " +
                                         std::to_string(hi) + " for " + name + " but received " +
                                         Napi::Number::New(env, d).ToString().Utf8Value());
  return int64_t(d);
}

std::vector<float> floats(const Napi::Env& env, const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, "Expected Float32Array for " + name);
  auto a = v.As<Napi::Float32Array>();
  return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

std::array<float, 3> triple(const Napi::Env& env, const Napi::Value& v, const std::string& name) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 3)
    throw Napi::TypeError::New(env, "Expected an array of 3 numbers for " + name);
  auto a = v.As<Napi::Array>();
  return {float(number(env, a.Get(0u), name)), float(number(env, a.Get(1u), name)),
          float(number(env, a.Get(2u), name))};
}

// A finalized model, owned by a JS object; sweeps hold a shared_ptr so a model collected by JS
// while a sweep runs stays alive until the sweep ends.
class ModelHandle : public Napi::ObjectWrap<ModelHandle> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeModel", {});
  }
  explicit ModelHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelHandle>(info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsObject())
      throw Napi::TypeError::New(env, "Expected a model spec object");
    guarded(env, [&]() -> Napi::Value {
      model_ = std::make_shared<fqa::Model>(parse(env, info[0].As<Napi::Object>()));
      return env.Undefined();
    });
  }
  std::shared_ptr<const fqa::Model> model() const { return model_; }

 private:
  static fqa::Model parse(const Napi::Env& env, const Napi::Object& spec) {
    fqa::Model m;
    const Napi::Value arch = field(spec, "architecture");
    const std::string a = arch.IsString() ? arch.As<Napi::String>().Utf8Value() : "";
    if (a == "focuslitenn") m.arch = fqa::Architecture::FocusLiteNN;
    else if (a == "eonss") m.arch = fqa::Architecture::EONSS;
    else throw Napi::TypeError::New(env, "Expected 'focuslitenn' or 'eonss' for architecture but received '" + a + "'");
    m.patchSize = int(integer(env, field(spec, "patchSize"), "patchSize", fqa::kModelLimits.patchMin, fqa::kModelLimits.patchMax));
    m.mean = triple(env, field(spec, "mean"), "mean");
    m.std = triple(env, field(spec, "std"), "std");
    if (m.arch == fqa::Architecture::FocusLiteNN) {
      m.kernels = int(integer(env, field(spec, "kernels"), "kernels", 1, fqa::kModelLimits.focusKernelsMax));
      m.convKernel = int(integer(env, field(spec, "convKernel"), "convKernel", 1, fqa::kModelLimits.focusConvKernelMax));
      m.convStride = int(integer(env, field(spec, "convStride"), "convStride", 1, fqa::kModelLimits.focusConvStrideMax));
      m.convPad = int(integer(env, field(spec, "convPad"), "convPad", 0, fqa::kModelLimits.focusConvKernelMax - 1));
      m.convWeight = floats(env, field(spec, "convWeight"), "convWeight");
      m.convBias = floats(env, field(spec, "convBias"), "convBias");
      if (m.kernels > 1) {
        m.fcWeight = floats(env, field(spec, "fcWeight"), "fcWeight");
        m.fcBias = float(number(env, field(spec, "fcBias"), "fcBias"));
      }
    } else {
      const Napi::Value layers = field(spec, "layers");
      if (!layers.IsArray()) throw Napi::TypeError::New(env, "Expected an array for layers");
      auto arr = layers.As<Napi::Array>();
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        const std::string n = "layers[" + std::to_string(i) + "]";
        if (!arr.Get(i).IsObject()) throw Napi::TypeError::New(env, "Expected an object for " + n);
        Napi::Object o = arr.Get(i).As<Napi::Object>();
        fqa::EonssLayer L;
        L.inChannels = int(integer(env, field(o, "inChannels"), n + ".inChannels", 1, fqa::kModelLimits.eonssChannelsMax));
        L.outChannels = int(integer(env, field(o, "outChannels"), n + ".outChannels", 1, fqa::kModelLimits.eonssChannelsMax));
        L.kernel = int(integer(env, field(o, "kernel"), n + ".kernel", 1, fqa::kModelLimits.eonssKernelMax));
        L.stride = int(integer(env, field(o, "stride"), n + ".stride", 1, fqa::kModelLimits.eonssStrideMax));
        L.pad = int(integer(env, field(o, "pad"), n + ".pad", 0, fqa::kModelLimits.eonssKernelMax - 1));
        L.gdn = field(o, "gdn").ToBoolean();
        L.maxPool = field(o, "maxPool").ToBoolean();
        L.weight = floats(env, field(o, "weight"), n + ".weight");
        L.bias = floats(env, field(o, "bias"), n + ".bias");
        if (L.gdn) {
          L.gdnGamma = floats(env, field(o, "gdnGamma"), n + ".gdnGamma");
          L.gdnBeta = floats(env, field(o, "gdnBeta"), n + ".gdnBeta");
        }
        m.eonss.push_back(std::move(L));
      }
    }
    fqa::finalizeModel(m);
    return m;
  }
  std::shared_ptr<fqa::Model> model_;
};

// Everything one sweep needs, copied out of JS values on the main thread.
struct SweepCall {
  std::shared_ptr<const fqa::Model> model;
  fqa::Region region;
  fqa::PatchGrid grid;
  fqa::SweepOptions options;
};

// sweep(model, pixels, {width, height, rowStride, patchWidth, patchHeight, stride, skip?, threads, kernel, shareConvolution})
SweepCall parseSweep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3) throw Napi::TypeError::New(env, "sweep expects (model, pixels, options)");
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(addonData(env).modelConstructor.Value()))
    throw Napi::TypeError::New(env, "Expected a NativeModel for model");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "Expected Uint8Array for pixels");
  if (!info[2].IsObject()) throw Napi::TypeError::New(env, "Expected an options object");
  SweepCall call;
  call.model = Napi::ObjectWrap<ModelHandle>::Unwrap(info[0].As<Napi::Object>())->model();
  auto pixels = info[1].As<Napi::Uint8Array>();
  Napi::Object o = info[2].As<Napi::Object>();
  const int64_t maxDim = int64_t(1) << 31;
  call.region.pixels = pixels.Data();
  call.region.byteLength = int64_t(pixels.ByteLength());
  call.region.width = integer(env, field(o, "width"), "width", 1, maxDim);
  call.region.height = integer(env, field(o, "height"), "height", 1, maxDim);
  call.region.rowStride = integer(env, field(o, "rowStride"), "rowStride", 1, int64_t(1) << 40);
  const int64_t patchWidth = integer(env, field(o, "patchWidth"), "patchWidth", 1, maxDim);
  const int64_t patchHeight = integer(env, field(o, "patchHeight"), "patchHeight", 1, maxDim);
  const int64_t stride = integer(env, field(o, "stride"), "stride", 1, maxDim);
  const Napi::Value skip = field(o, "skip");
  const uint8_t* skipData = nullptr;
  int64_t skipEntries = -1;
  if (!skip.IsUndefined() && !skip.IsNull()) {
    if (!skip.IsTypedArray() || skip.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Napi::TypeError::New(env, "Expected Uint8Array for skip");
    skipData = skip.As<Napi::Uint8Array>().Data();
    skipEntries = int64_t(skip.As<Napi::Uint8Array>().ElementLength());
  }
  call.options.threads = int(integer(env, field(o, "threads"), "threads", 0, 1024));
  const Napi::Value kernel = field(o, "kernel");
  if (!kernel.IsString()) throw Napi::TypeError::New(env, "Expected string for kernel");
  guarded(env, [&]() -> Napi::Value {
    call.options.kernel = fqa::parseKernel(kernel.As<Napi::String>().Utf8Value());
    call.grid = fqa::sweepCallGrid(*call.model, call.region, patchWidth, patchHeight, stride, skipEntries);
    call.grid.skip = skipData;
    if (call.options.kernel == Kernel::Cuda && !fqa::kernelSupported(Kernel::Cuda))
      throw std::invalid_argument("kernel cuda: no usable CUDA device (" + fqa::probeGpu().error + ")");
    if (!fqa::kernelSupported(call.options.kernel))
      throw std::invalid_argument(std::string("kernel ") + fqa::kernelName(call.options.kernel) +
                                  " is not supported by this CPU");
    return env.Undefined();
  });
  call.options.shareConvolution = field(o, "shareConvolution").ToBoolean();
  return call;
}

Napi::Object makeResult(Napi::Env env, const std::vector<float>& scores, const fqa::SweepStats& stats,
                        const fqa::PatchGrid& grid) {
  Napi::Object out = Napi::Object::New(env);
  auto arr = Napi::Float32Array::New(env, scores.size());
  std::copy(scores.begin(), scores.end(), arr.Data());
  out.Set("scores", arr);
  out.Set("rows", Napi::Number::New(env, double(grid.rows)));
  out.Set("columns", Napi::Number::New(env, double(grid.columns)));
  out.Set("kernel", Napi::String::New(env, fqa::kernelName(stats.kernelUsed)));
  out.Set("sharedConvolution", Napi::Boolean::New(env, stats.sharedConvolution));
  out.Set("threads", Napi::Number::New(env, stats.threadsUsed));
  if (stats.kernelUsed == Kernel::Cuda) out.Set("gpuKernelMs", Napi::Number::New(env, stats.gpuKernelMs));
  return out;
}

class SweepWorker : public Napi::AsyncWorker {
 public:
  SweepWorker(Napi::Env env, SweepCall call, const Napi::Value& pixels, const Napi::Value& skip)
      : Napi::AsyncWorker(env, "fqa.sweep"), deferred_(Napi::Promise::Deferred::New(env)), call_(std::move(call)) {
    // Keep the input buffers alive while the worker reads them.
    pixelsRef_ = Napi::Persistent(pixels.As<Napi::Object>());
    if (skip.IsObject()) skipRef_ = Napi::Persistent(skip.As<Napi::Object>());
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      scores_.assign(size_t(fqa::checkedMul(call_.grid.rows, call_.grid.columns, "patch count")), 0.f);
      stats_ = fqa::sweep(*call_.model, call_.region, call_.grid, call_.options, scores_.data());
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error in sweep");
    }
  }
  void OnOK() override {
    // An exception must not escape a libuv callback (it would terminate the process).
    try {
      deferred_.Resolve(makeResult(Env(), scores_, stats_, call_.grid));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  SweepCall call_;
  Napi::ObjectReference pixelsRef_, skipRef_;
  std::vector<float> scores_;
  fqa::SweepStats stats_;
};

Napi::Value Sweep(const Napi::CallbackInfo& info) {
  SweepCall call = parseSweep(info);
  auto* worker = new SweepWorker(info.Env(), std::move(call), info[1], info[2].As<Napi::Object>().Get("skip"));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value SweepSync(const Napi::CallbackInfo& info) {
  SweepCall call = parseSweep(info);
  return guarded(info.Env(), [&]() -> Napi::Value {
    std::vector<float> scores(size_t(fqa::checkedMul(call.grid.rows, call.grid.columns, "patch count")));
    fqa::SweepStats stats = fqa::sweep(*call.model, call.region, call.grid, call.options, scores.data());
    return makeResult(info.Env(), scores, stats, call.grid);
  });
}

Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("best", fqa::kernelName(fqa::bestKernel()));
  Napi::Array supported = Napi::Array::New(env);
  uint32_t i = 0;
  for (Kernel k : {Kernel::Reference, Kernel::Baseline, Kernel::AVX2, Kernel::AVX512})
    if (fqa::kernelSupported(k)) supported.Set(i++, fqa::kernelName(k));
  o.Set("supported", supported);
  o.Set("hardwareThreads", Napi::Number::New(env, std::thread::hardware_concurrency()));
  return o;
}

Napi::Value GpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  fqa::GpuProbe p = fqa::probeGpu();
  Napi::Object o = Napi::Object::New(env);
  o.Set("compiled", p.compiled);
  o.Set("deviceCount", p.deviceCount);
  o.Set("deviceName", p.deviceName);
  o.Set("error", p.error);
  return o;
}

// The model-spec limits (model.h), so TypeScript validates model files against the same numbers.
Napi::Value ModelLimits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const fqa::ModelLimits& l = fqa::kModelLimits;
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [name, lo, hi] : {std::tuple<const char*, int, int>{"patchSize", l.patchMin, l.patchMax},
                                     {"focusLiteNNKernels", 1, l.focusKernelsMax},
                                     {"focusLiteNNConvKernel", 1, l.focusConvKernelMax},
                                     {"focusLiteNNConvStride", 1, l.focusConvStrideMax},
                                     {"eonssChannels", 1, l.eonssChannelsMax},
                                     {"eonssKernel", 1, l.eonssKernelMax},
                                     {"eonssStride", 1, l.eonssStrideMax}}) {
    Napi::Array range = Napi::Array::New(env, 2);
    range.Set(uint32_t(0), lo);
    range.Set(uint32_t(1), hi);
    o.Set(name, range);
  }
  o.Set("eonssLayers", l.eonssLayers);
  return o;
}

// measureFmaPeak(kernel, threads, seconds): synchronous, for benchmarks only.
Napi::Value MeasureFmaPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsString()) throw Napi::TypeError::New(env, "measureFmaPeak expects (kernel, threads, seconds)");
  const int threads = int(integer(env, info[1], "threads", 1, 1024));
  const double seconds = number(env, info[2], "seconds");
  if (!(seconds > 0 && seconds <= 60)) throw Napi::RangeError::New(env, "Expected seconds in (0, 60] for measureFmaPeak");
  return guarded(env, [&]() -> Napi::Value {
    return Napi::Number::New(env, fqa::measureFmaPeakGflops(fqa::parseKernel(info[0].As<Napi::String>().Utf8Value()),
                                                            threads, seconds));
  });
}

Napi::Value FlopsPerPatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(addonData(env).modelConstructor.Value()))
    throw Napi::TypeError::New(env, "flopsPerPatch expects (model, patchWidth, patchHeight)");
  auto model = Napi::ObjectWrap<ModelHandle>::Unwrap(info[0].As<Napi::Object>())->model();
  return Napi::Number::New(env, model->flopsPerPatch(int(integer(env, info[1], "patchWidth", 1, 1 << 30)),
                                                     int(integer(env, info[2], "patchHeight", 1, 1 << 30))));
}


// The direct JPEG-tile reader for the OpenSlide levels it can serve (same pyramid, same sizes).
struct DirectReader {
#ifdef FQA_HAVE_TIFF_JPEG
  std::shared_ptr<fqa::TiffJpegReader> reader;
#endif
  std::vector<int> levelOf;  // OpenSlide level -> direct level, or -1
  // The reader's scaled levels of those direct levels (1/2, 1/4, 1/8 decodes), addressed from JS as
  // level levelOf.size() + k after the OpenSlide levels, so those keep their numbers.
  struct Scaled {
    int level;   // the OpenSlide level it scales
    int denom;   // its pixels are 1/denom of that level's
    int direct;  // TiffJpegReader level
  };
  std::vector<Scaled> scaled;
  int levelCount() const { return int(levelOf.size() + scaled.size()); }
  // The direct level serving `level` (an OpenSlide level or a scaled one), or -1.
  int directLevel(int level) const {
    return size_t(level) < levelOf.size() ? levelOf[size_t(level)] : scaled[size_t(level) - levelOf.size()].direct;
  }
  // Level-0 pixels per pixel of `level`.
  double downsample(const fqa::SlideInfo& info, int level) const {
    if (size_t(level) < levelOf.size()) return info.levels[size_t(level)].downsample;
    const Scaled& s = scaled[size_t(level) - levelOf.size()];
    return info.levels[size_t(s.level)].downsample * s.denom;
  }
};

struct OpenedSlide {
  std::shared_ptr<fqa::OpenSlideReader> reader;
  std::shared_ptr<DirectReader> direct;
};

std::shared_ptr<DirectReader> openDirect(const std::string& path, const fqa::SlideInfo& info) {
#ifdef FQA_HAVE_TIFF_JPEG
  // Only where OpenSlide's levels are exactly the TIFF's tiled directories.
  if (info.vendor != "aperio" && info.vendor != "generic-tiff") return nullptr;
  std::string why;
  auto tiff = fqa::TiffJpegReader::open(path, &why);
  if (!tiff) return nullptr;
  auto d = std::make_shared<DirectReader>();
  d->reader = tiff;
  bool any = false;
  for (const auto& level : info.levels) {
    int match = -1;
    for (size_t j = 0; j < tiff->levels().size(); ++j)
      if (tiff->levels()[j].scaleDenom == 1 && tiff->levels()[j].width == level.width && tiff->levels()[j].height == level.height) match = int(j);
    d->levelOf.push_back(match);
    any |= match >= 0;
  }
  for (size_t i = 0; i < d->levelOf.size(); ++i)
    for (size_t j = 0; j < tiff->levels().size(); ++j)
      if (d->levelOf[i] >= 0 && tiff->levels()[j].sourceLevel == d->levelOf[i])
        d->scaled.push_back({int(i), tiff->levels()[j].scaleDenom, int(j)});
  return any ? d : nullptr;
#else
  (void)path;
  (void)info;
  return nullptr;
#endif
}

// An open slide, owned by a JS object. Reads hold a shared_ptr, so closing (or collecting) the
// JS object while a read runs only releases the slide when that read ends.
class SlideHandle : public Napi::ObjectWrap<SlideHandle> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeSlide",
                       {InstanceMethod("info", &SlideHandle::Info), InstanceMethod("readRegion", &SlideHandle::ReadRegion),
                        InstanceMethod("readerStats", &SlideHandle::ReaderStats),
                        InstanceMethod("readInBands", &SlideHandle::ReadInBands),
                        InstanceMethod("sweepRegions", &SlideHandle::SweepRegions),
                        InstanceMethod("close", &SlideHandle::Close)});
  }
  explicit SlideHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SlideHandle>(info) {
    if (info.Length() != 1 || !info[0].IsExternal())
      throw Napi::TypeError::New(info.Env(), "NativeSlide is created by openSlide(path)");
    const OpenedSlide& opened = *info[0].As<Napi::External<OpenedSlide>>().Data();
    reader_ = opened.reader;
    direct_ = opened.direct;
  }
  std::shared_ptr<fqa::OpenSlideReader> reader(const Napi::Env& env) const {
    if (!reader_) throw Napi::Error::New(env, "slide is closed");
    return reader_;
  }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const fqa::SlideInfo& s = reader(env)->info();
    Napi::Object o = Napi::Object::New(env);
    o.Set("vendor", s.vendor);
    Napi::Array levels = Napi::Array::New(env, s.levels.size());
    for (size_t i = 0; i < s.levels.size(); ++i) {
      Napi::Object l = Napi::Object::New(env);
      l.Set("width", Napi::Number::New(env, double(s.levels[i].width)));
      l.Set("height", Napi::Number::New(env, double(s.levels[i].height)));
      l.Set("downsample", Napi::Number::New(env, s.levels[i].downsample));
      levels.Set(uint32_t(i), l);
    }
    o.Set("levels", levels);
    Napi::Object props = Napi::Object::New(env);
    for (const auto& [k, v] : s.properties) props.Set(k, v);
    o.Set("properties", props);
    Napi::Array direct = Napi::Array::New(env);
    uint32_t n = 0;
    if (direct_)
      for (size_t i = 0; i < direct_->levelOf.size(); ++i)
        if (direct_->levelOf[i] >= 0) direct.Set(n++, Napi::Number::New(env, double(i)));
    o.Set("directLevels", direct);
    Napi::Array scaled = Napi::Array::New(env);
#ifdef FQA_HAVE_TIFF_JPEG
    if (direct_)
      for (size_t k = 0; k < direct_->scaled.size(); ++k) {
        const DirectReader::Scaled& sc = direct_->scaled[k];
        const fqa::JpegTiffLevel& L = direct_->reader->levels()[size_t(sc.direct)];
        Napi::Object l = Napi::Object::New(env);
        l.Set("index", Napi::Number::New(env, double(direct_->levelOf.size() + k)));
        l.Set("level", Napi::Number::New(env, sc.level));
        l.Set("denom", Napi::Number::New(env, sc.denom));
        l.Set("width", Napi::Number::New(env, double(L.width)));
        l.Set("height", Napi::Number::New(env, double(L.height)));
        l.Set("downsample", Napi::Number::New(env, direct_->downsample(s, int(direct_->levelOf.size() + k))));
        scaled.Set(uint32_t(k), l);
      }
#endif
    o.Set("scaledLevels", scaled);
    return o;
  }
  // Tiles the direct reader decoded and cache hits so far (0, 0 without a direct reader).
  Napi::Value ReaderStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    int64_t decoded = 0, hits = 0, redecoded = 0;
#ifdef FQA_HAVE_TIFF_JPEG
    if (direct_) {
      decoded = direct_->reader->tilesDecoded();
      hits = direct_->reader->tileCacheHits();
      redecoded = direct_->reader->tilesRedecoded();
    }
#endif
    o.Set("tilesDecoded", Napi::Number::New(env, double(decoded)));
    o.Set("tileCacheHits", Napi::Number::New(env, double(hits)));
    o.Set("tilesRedecoded", Napi::Number::New(env, double(redecoded)));
    return o;
  }
  // The caller reads `level` top to bottom in bands (a report's view): the direct reader then keeps
  // the few tile rows one band shares with the next, not its default capacity (>= 256 MiB), which
  // only a scan's overlapping regions need.
  Napi::Value ReadInBands(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto r = reader(env);
    const int64_t levels = direct_ ? direct_->levelCount() : int64_t(r->info().levels.size());
    const int level = int(integer(env, info[0], "level", 0, levels - 1));
#ifdef FQA_HAVE_TIFF_JPEG
    if (direct_ && direct_->directLevel(level) >= 0) {
      const fqa::JpegTiffLevel& L = direct_->reader->levels()[size_t(direct_->directLevel(level))];
      const int64_t tileRowBytes = ((L.width + L.tileWidth - 1) / L.tileWidth) * L.tileWidth * L.tileHeight * 3;
      direct_->reader->setCacheCapacity(std::min(direct_->reader->cacheCapacity(), std::max<int64_t>(int64_t(16) << 20, 3 * tileRowBytes)));
    }
#endif
    return env.Undefined();
  }
  Napi::Value ReadRegion(const Napi::CallbackInfo& info);
  Napi::Value SweepRegions(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info) {
    reader_.reset();
    direct_.reset();
    return info.Env().Undefined();
  }
  std::shared_ptr<fqa::OpenSlideReader> reader_;
  std::shared_ptr<DirectReader> direct_;
};

class OpenSlideWorker : public Napi::AsyncWorker {
 public:
  OpenSlideWorker(Napi::Env env, std::string path)
      : Napi::AsyncWorker(env, "fqa.openSlide"), deferred_(Napi::Promise::Deferred::New(env)), path_(std::move(path)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      opened_.reader = fqa::OpenSlideReader::open(path_);
      opened_.direct = openDirect(path_, opened_.reader->info());
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    try {
      auto external = Napi::External<OpenedSlide>::New(Env(), &opened_);
      deferred_.Resolve(addonData(Env()).slideConstructor.New({external}));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string path_;
  OpenedSlide opened_;
};

class ReadRegionWorker : public Napi::AsyncWorker {
 public:
  ReadRegionWorker(Napi::Env env, std::shared_ptr<fqa::OpenSlideReader> reader, std::shared_ptr<DirectReader> direct, int level,
                   int64_t x, int64_t y, int64_t w, int64_t h)
      : Napi::AsyncWorker(env, "fqa.readRegion"), deferred_(Napi::Promise::Deferred::New(env)), reader_(std::move(reader)),
        direct_(std::move(direct)), level_(level), x_(x), y_(y), w_(w), h_(h) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      pixels_.resize(size_t(fqa::readRegionBytes(w_, h_)));
#ifdef FQA_HAVE_TIFF_JPEG
      if (direct_ && direct_->directLevel(level_) >= 0) {
        // Level pixel of the level-0 position, as OpenSlide computes it (x / downsample).
        const double ds = direct_->downsample(reader_->info(), level_);
        direct_->reader->readLevelRegion(direct_->directLevel(level_), fqa::levelPosition(x_, ds), fqa::levelPosition(y_, ds), w_, h_,
                                         pixels_.data(), fqa::checkedMul(3, w_, "region row byte count"));
        return;
      }
#endif
      reader_->readRegion(level_, x_, y_, w_, h_, pixels_.data(), fqa::checkedMul(3, w_, "region row byte count"));
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    try {
      // The buffer moves into JS without a copy; its deleter frees the vector.
      auto* owned = new std::vector<uint8_t>(std::move(pixels_));
      auto buffer = Napi::Buffer<uint8_t>::New(Env(), owned->data(), owned->size(),
                                               [](Napi::Env, uint8_t*, std::vector<uint8_t>* v) { delete v; }, owned);
      deferred_.Resolve(buffer);
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<fqa::OpenSlideReader> reader_;
  std::shared_ptr<DirectReader> direct_;
  int level_;
  int64_t x_, y_, w_, h_;
  std::vector<uint8_t> pixels_;
};

// readRegion(level, x, y, width, height): x, y in level-0 pixels; width, height at the level.
Napi::Value SlideHandle::ReadRegion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5 && info.Length() != 6) throw Napi::TypeError::New(env, "readRegion expects (level, x, y, width, height[, reader])");
  std::string readerName = "auto";
  if (info.Length() == 6) {
    if (!info[5].IsString()) throw Napi::TypeError::New(env, "Expected 'auto', 'direct' or 'openslide' for reader");
    readerName = info[5].As<Napi::String>().Utf8Value();
    if (readerName != "auto" && readerName != "direct" && readerName != "openslide")
      throw Napi::TypeError::New(env, "Expected 'auto', 'direct' or 'openslide' for reader but received '" + readerName + "'");
  }
  auto r = reader(env);
  // OpenSlide's levels, then the direct reader's scaled levels (info().scaledLevels).
  const int64_t levels = direct_ ? direct_->levelCount() : int64_t(r->info().levels.size());
  const int level = int(integer(env, info[0], "level", 0, levels - 1));
  const int64_t x = integer(env, info[1], "x", -(int64_t(1) << 40), int64_t(1) << 40);
  const int64_t y = integer(env, info[2], "y", -(int64_t(1) << 40), int64_t(1) << 40);
  const int64_t w = integer(env, info[3], "width", 1, 1 << 16);
  const int64_t h = integer(env, info[4], "height", 1, 1 << 16);
  guardedCount(env, [&] { return fqa::readRegionBytes(w, h); });
  std::shared_ptr<DirectReader> direct = readerName == "openslide" ? nullptr : direct_;
  if ((readerName == "direct" || level >= int64_t(r->info().levels.size())) && !(direct && direct->directLevel(level) >= 0))
    throw Napi::Error::New(env, "the direct JPEG-tile reader cannot read level " + std::to_string(level) + " of this slide");
  auto* worker = new ReadRegionWorker(env, r, direct, level, x, y, w, h);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

#ifdef FQA_HAVE_TIFF_JPEG
// The fused scan of a direct-read level (region_sweep.h) on its own native threads: progress is the
// count of regions done (coalesced: the TypeScript side reports every region), cancel() stops it
// between bands. Skip masks and region geometry are copied here; only scores come back.
class RegionSweepWorker : public Napi::AsyncProgressWorker<int64_t> {
 public:
  RegionSweepWorker(Napi::Env env, std::shared_ptr<DirectReader> direct, std::shared_ptr<const fqa::Model> model, int level,
                    std::vector<int64_t> geometry, std::vector<uint8_t> skip, fqa::RegionSweepOptions options, const Napi::Function& onProgress)
      : Napi::AsyncProgressWorker<int64_t>(env, "fqa.sweepRegions"), deferred_(Napi::Promise::Deferred::New(env)),
        direct_(std::move(direct)), model_(std::move(model)), level_(level), geometry_(std::move(geometry)), skip_(std::move(skip)),
        options_(std::move(options)), cancel_(std::make_shared<std::atomic<bool>>(false)) {
    onProgress_ = Napi::Persistent(onProgress);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  std::shared_ptr<std::atomic<bool>> cancelFlag() const { return cancel_; }

 protected:
  void Execute(const ExecutionProgress& progress) override {
    try {
      scores_.assign(size_t(fqa::regionPatchCount(geometry_.data(), geometry_.size() / 4, int64_t(skip_.size()))), 0.f);
      std::vector<fqa::SlideRegion> regions;
      size_t offset = 0;
      for (size_t i = 0; i < geometry_.size(); i += 4) {
        fqa::SlideRegion r;
        r.x = geometry_[i];
        r.y = geometry_[i + 1];
        r.columns = geometry_[i + 2];
        r.rows = geometry_[i + 3];
        r.skip = skip_.data() + offset;
        r.scores = scores_.data() + offset;
        offset += size_t(r.columns * r.rows);  // summed without overflow by regionPatchCount
        regions.push_back(r);
      }
      std::atomic<int64_t> done{0};
      options_.cancel = cancel_.get();
      options_.regionDone = [&]() {
        const int64_t n = ++done;
        progress.Send(&n, 1);
      };
      stats_ = fqa::sweepSlideRegions(*direct_->reader, level_, *model_, regions, options_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnProgress(const int64_t* done, size_t count) override {
    if (!done || count == 0 || onProgress_.IsEmpty()) return;
    // The callback is fqa's own wrapper, which never throws; a pending exception is cleared anyway.
    try {
      onProgress_.Call({Napi::Number::New(Env(), double(*done))});
    } catch (const Napi::Error&) {
    }
  }
  void OnOK() override {
    try {
      Napi::Object out = Napi::Object::New(Env());
      auto scores = Napi::Float32Array::New(Env(), scores_.size());
      std::copy(scores_.begin(), scores_.end(), scores.Data());
      out.Set("scores", scores);
      out.Set("kernel", Napi::String::New(Env(), fqa::kernelName(stats_.kernelUsed)));
      out.Set("threads", Napi::Number::New(Env(), stats_.threadsUsed));
      out.Set("sharedConvolution", Napi::Boolean::New(Env(), stats_.sharedConvolution));
      deferred_.Resolve(out);
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<DirectReader> direct_;
  std::shared_ptr<const fqa::Model> model_;
  int level_;
  std::vector<int64_t> geometry_;  // per region: x, y (level pixels), columns, rows
  std::vector<uint8_t> skip_;
  fqa::RegionSweepOptions options_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  Napi::FunctionReference onProgress_;
  std::vector<float> scores_;
  fqa::SweepStats stats_;
};
#endif

// sweepRegions(model, level, regions, skip, {patchSize, stride, threads, kernel, shareConvolution}, onProgress)
//   -> {promise, cancel}. regions: Float64Array of x, y (level-0 pixels), columns, rows per region;
//   skip: one byte per patch of every region in turn.
Napi::Value SlideHandle::SweepRegions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#ifdef FQA_HAVE_TIFF_JPEG
  if (info.Length() != 6) throw Napi::TypeError::New(env, "sweepRegions expects (model, level, regions, skip, options, onProgress)");
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(addonData(env).modelConstructor.Value()))
    throw Napi::TypeError::New(env, "Expected a NativeModel for model");
  auto r = reader(env);
  const int level = int(integer(env, info[1], "level", 0, (direct_ ? direct_->levelCount() : int64_t(r->info().levels.size())) - 1));
  if (!direct_ || direct_->directLevel(level) < 0)
    throw Napi::Error::New(env, "the direct JPEG-tile reader cannot read level " + std::to_string(level) + " of this slide");
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(env, "Expected Float64Array for regions");
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "Expected Uint8Array for skip");
  if (!info[4].IsObject()) throw Napi::TypeError::New(env, "Expected an options object");
  if (!info[5].IsFunction()) throw Napi::TypeError::New(env, "Expected a function for onProgress");
  auto regions = info[2].As<Napi::Float64Array>();
  if (regions.ElementLength() % 4 != 0) throw Napi::RangeError::New(env, "Expected regions to hold 4 numbers per region (x, y, columns, rows)");
  Napi::Object o = info[4].As<Napi::Object>();
  fqa::RegionSweepOptions options;
  options.patchSize = integer(env, field(o, "patchSize"), "patchSize", 1, fqa::kMaxRegionSide);
  options.stride = integer(env, field(o, "stride"), "stride", 1, fqa::kMaxRegionSide);
  options.threads = int(integer(env, field(o, "threads"), "threads", 1, 1024));
  options.shareConvolution = field(o, "shareConvolution").ToBoolean();
  const Napi::Value kernel = field(o, "kernel");
  if (!kernel.IsString()) throw Napi::TypeError::New(env, "Expected string for kernel");
  guarded(env, [&]() -> Napi::Value {
    options.kernel = fqa::parseKernel(kernel.As<Napi::String>().Utf8Value());
    return env.Undefined();
  });
  // Level pixel of a level-0 position, as readRegion and OpenSlide compute it (x / downsample).
  const double downsample = direct_->downsample(r->info(), level);
  std::vector<int64_t> geometry(regions.ElementLength());
  for (size_t i = 0; i < regions.ElementLength(); i += 4) {
    const std::string name = "regions[" + std::to_string(i / 4) + "]";
    const int64_t x = integer(env, Napi::Number::New(env, regions[i]), name + ".x", -(int64_t(1) << 40), int64_t(1) << 40);
    const int64_t y = integer(env, Napi::Number::New(env, regions[i + 1]), name + ".y", -(int64_t(1) << 40), int64_t(1) << 40);
    geometry[i] = guardedCount(env, [&] { return fqa::levelPosition(x, downsample); });
    geometry[i + 1] = guardedCount(env, [&] { return fqa::levelPosition(y, downsample); });
    geometry[i + 2] = integer(env, Napi::Number::New(env, regions[i + 2]), name + ".columns", 1, fqa::kMaxRegionSide);
    geometry[i + 3] = integer(env, Napi::Number::New(env, regions[i + 3]), name + ".rows", 1, fqa::kMaxRegionSide);
  }
  auto skip = info[3].As<Napi::Uint8Array>();
  guardedCount(env, [&] { return fqa::regionPatchCount(geometry.data(), geometry.size() / 4, int64_t(skip.ElementLength())); });
  auto model = Napi::ObjectWrap<ModelHandle>::Unwrap(info[0].As<Napi::Object>())->model();
  // The sweep's own argument checks, here so that a bad call throws instead of rejecting.
  guarded(env, [&]() -> Napi::Value {
    std::vector<fqa::SlideRegion> shapes(geometry.size() / 4);
    for (size_t i = 0; i < shapes.size(); ++i)
      std::tie(shapes[i].x, shapes[i].y, shapes[i].columns, shapes[i].rows) =
          std::tie(geometry[4 * i], geometry[4 * i + 1], geometry[4 * i + 2], geometry[4 * i + 3]);
    fqa::validateRegionSweep(*model, shapes, options);
    return env.Undefined();
  });
  auto* worker = new RegionSweepWorker(env, direct_, model, direct_->directLevel(level), std::move(geometry),
                                       std::vector<uint8_t>(skip.Data(), skip.Data() + skip.ElementLength()), std::move(options),
                                       info[5].As<Napi::Function>());
  auto flag = worker->cancelFlag();
  Napi::Object out = Napi::Object::New(env);
  out.Set("promise", worker->Promise());
  out.Set("cancel", Napi::Function::New(env, [flag](const Napi::CallbackInfo& call) -> Napi::Value {
    flag->store(true);
    return call.Env().Undefined();
  }, "cancel"));
  worker->Queue();
  return out;
#else
  (void)info;
  throw Napi::Error::New(env, "this build has no direct JPEG-tile reader (libtiff-dev, libjpeg62-turbo-dev)");
#endif
}

Napi::Value OpenSlide(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "Expected string for path");
  auto* worker = new OpenSlideWorker(env, info[0].As<Napi::String>().Utf8Value());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// tileCache([budgetBytes]) -> {budgetBytes, cachedBytes}: the process-wide decoded-tile budget.
Napi::Value TileCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
#ifdef FQA_HAVE_TIFF_JPEG
  if (info.Length() > 0 && !info[0].IsUndefined())
    fqa::TiffJpegReader::setProcessCacheBudget(integer(env, info[0], "budgetBytes", int64_t(1) << 20, int64_t(1) << 40));
  o.Set("budgetBytes", Napi::Number::New(env, double(fqa::TiffJpegReader::processCacheBudget())));
  o.Set("cachedBytes", Napi::Number::New(env, double(fqa::TiffJpegReader::processCacheBytes())));
#else
  o.Set("budgetBytes", Napi::Number::New(env, 0));
  o.Set("cachedBytes", Napi::Number::New(env, 0));
#endif
  return o;
}

Napi::Value OpenSlideVersion(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), fqa::openslideVersion()); });
}

// Training passes for FocusLiteNN (synchronous: one batch, on the calling thread plus `threads`
// C++ threads; a training loop calls them batch by batch).
fqa::PatchBatch parseBatch(const Napi::CallbackInfo& info, std::shared_ptr<const fqa::Model>& model) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(addonData(env).modelConstructor.Value()))
    throw Napi::TypeError::New(env, "Expected a NativeModel for model");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "Expected Uint8Array for patches");
  model = Napi::ObjectWrap<ModelHandle>::Unwrap(info[0].As<Napi::Object>())->model();
  auto px = info[1].As<Napi::Uint8Array>();
  fqa::PatchBatch b;
  b.pixels = px.Data();
  b.count = integer(env, info[2], "count", 1, int64_t(1) << 24);
  b.size = integer(env, info[3], "size", 1, 4096);
  guardedCount(env, [&] { return fqa::checkPatchBatch(b.count, b.size, int64_t(px.ByteLength())); });
  return b;
}

// trainForward(model, patches, count, size, threads) -> {scores, mins, argmin}
Napi::Value TrainForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) throw Napi::TypeError::New(env, "trainForward expects (model, patches, count, size, threads)");
  std::shared_ptr<const fqa::Model> model;
  fqa::PatchBatch b = parseBatch(info, model);
  const int threads = int(integer(env, info[4], "threads", 0, 1024));
  return guarded(env, [&]() -> Napi::Value {
    const size_t entries = size_t(fqa::checkedMul(b.count, model->kernels, "mins entry count"));
    auto scores = Napi::Float32Array::New(env, size_t(b.count));
    auto mins = Napi::Float32Array::New(env, entries);
    auto argmin = Napi::Int32Array::New(env, entries);
    fqa::focusliteForwardBatch(*model, b, threads, scores.Data(), mins.Data(), argmin.Data());
    Napi::Object o = Napi::Object::New(env);
    o.Set("scores", scores);
    o.Set("mins", mins);
    o.Set("argmin", argmin);
    return o;
  });
}

// trainBackward(model, patches, count, size, mins, argmin, upstream) -> {conv, bias, fc, fcBias}
Napi::Value TrainBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 7) throw Napi::TypeError::New(env, "trainBackward expects (model, patches, count, size, mins, argmin, upstream)");
  std::shared_ptr<const fqa::Model> model;
  fqa::PatchBatch b = parseBatch(info, model);
  if (model->arch != fqa::Architecture::FocusLiteNN) throw Napi::TypeError::New(env, "training supports FocusLiteNN models only");
  // count <= 2^24 and kernels <= 256 (checked on entry): count * kernels fits, checked anyway.
  const size_t entries = size_t(guardedCount(env, [&] { return fqa::checkedMul(b.count, model->kernels, "mins entry count"); }));
  const size_t k = size_t(model->kernels);
  auto typed = [&](int i, napi_typedarray_type type, size_t length, const char* name) {
    if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type ||
        info[i].As<Napi::TypedArray>().ElementLength() != length)
      throw Napi::TypeError::New(env, std::string("Expected a typed array of ") + std::to_string(length) + " for " + name);
  };
  typed(4, napi_float32_array, entries, "mins");
  typed(5, napi_int32_array, entries, "argmin");
  typed(6, napi_float32_array, size_t(b.count), "upstream");
  const int64_t out = fqa::convOutputSize(b.size, model->convKernel, model->convStride, model->convPad);
  const int32_t* am = info[5].As<Napi::Int32Array>().Data();
  for (size_t i = 0; i < entries; ++i)
    if (am[i] < 0 || am[i] >= out * out) throw Napi::RangeError::New(env, "argmin out of range");
  return guarded(env, [&]() -> Napi::Value {
    auto conv = Napi::Float64Array::New(env, k * 3 * model->convKernel * model->convKernel);
    auto bias = Napi::Float64Array::New(env, k);
    auto fc = Napi::Float64Array::New(env, k);
    auto fcBias = Napi::Float64Array::New(env, 1);
    fqa::focusliteBackwardBatch(*model, b, info[4].As<Napi::Float32Array>().Data(), am, info[6].As<Napi::Float32Array>().Data(),
                                conv.Data(), bias.Data(), fc.Data(), fcBias.Data());
    Napi::Object o = Napi::Object::New(env);
    o.Set("conv", conv);
    o.Set("bias", bias);
    o.Set("fc", fc);
    o.Set("fcBias", fcBias);
    return o;
  });
}

#ifdef FQA_HAVE_TIFF_JPEG
// Encodes the tiles of one band of a zoomable view (jpeg_encode.h) on a libuv thread; the band stays
// referenced from JS until the tiles are done, so it is read in place.
class EncodeTilesWorker : public Napi::AsyncWorker {
 public:
  EncodeTilesWorker(Napi::Env env, Napi::Uint8Array band, int64_t rowStride, int64_t rows, std::vector<int64_t> columns, int quality)
      : Napi::AsyncWorker(env, "fqa.encodeJpegTiles"), deferred_(Napi::Promise::Deferred::New(env)), band_(Napi::Persistent(band)),
        pixels_(band.Data()), rowStride_(rowStride), rows_(rows), columns_(std::move(columns)), quality_(quality) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      for (size_t i = 0; i + 1 < columns_.size(); i += 2)
        files_.push_back(fqa::encodeJpeg(pixels_, rowStride_, columns_[i], columns_[i + 1], rows_, quality_));
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Array out = Napi::Array::New(Env(), files_.size());
    for (size_t i = 0; i < files_.size(); ++i) out.Set(uint32_t(i), Napi::Buffer<uint8_t>::Copy(Env(), files_[i].data(), files_[i].size()));
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Uint8Array> band_;
  const uint8_t* pixels_;
  int64_t rowStride_, rows_;
  std::vector<int64_t> columns_;
  int quality_;
  std::vector<std::vector<uint8_t>> files_;
};

// encodeJpegTiles(band, rowStride, rows, columns, quality): `rows` rows of RGB `rowStride` bytes
// apart; columns [x0, x1, x0, x1, ...] in pixels; one JPEG file (Buffer) per pair.
Napi::Value EncodeJpegTiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) throw Napi::TypeError::New(env, "encodeJpegTiles expects (band, rowStride, rows, columns, quality)");
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "Expected Uint8Array for band");
  auto band = info[0].As<Napi::Uint8Array>();
  const int64_t rowStride = integer(env, info[1], "rowStride", 3, int64_t(1) << 30);
  const int64_t rows = integer(env, info[2], "rows", 1, 65535);
  if (int64_t(band.ByteLength()) / rowStride < rows)
    throw Napi::RangeError::New(env, "band of " + std::to_string(band.ByteLength()) + " bytes holds fewer than " + std::to_string(rows) + " rows");
  if (!info[3].IsArray()) throw Napi::TypeError::New(env, "Expected an array of column pairs for columns");
  auto list = info[3].As<Napi::Array>();
  if (list.Length() % 2 != 0 || list.Length() > 2 * 65536) throw Napi::RangeError::New(env, "columns must hold pairs [x0, x1, ...]");
  std::vector<int64_t> columns(list.Length());
  for (uint32_t i = 0; i < list.Length(); i += 2) {
    columns[i] = integer(env, list.Get(i), "x0", 0, rowStride / 3 - 1);
    columns[i + 1] = integer(env, list.Get(i + 1), "x1", columns[i] + 1, std::min<int64_t>(rowStride / 3, columns[i] + 65535));
  }
  const int quality = int(integer(env, info[4], "quality", 1, 100));
  auto* worker = new EncodeTilesWorker(env, band, rowStride, rows, std::move(columns), quality);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}
#endif

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  Napi::Function ctor = ModelHandle::Init(env);
  data->modelConstructor = Napi::Persistent(ctor);
  exports.Set("NativeModel", ctor);
  Napi::Function slideCtor = SlideHandle::Init(env);
  data->slideConstructor = Napi::Persistent(slideCtor);
  exports.Set("NativeSlide", slideCtor);
  env.SetInstanceData(data);  // deleted by Node when this environment exits
  exports.Set("openSlide", Napi::Function::New(env, OpenSlide, "openSlide"));
  exports.Set("trainForward", Napi::Function::New(env, TrainForward, "trainForward"));
  exports.Set("trainBackward", Napi::Function::New(env, TrainBackward, "trainBackward"));
  exports.Set("openslideVersion", Napi::Function::New(env, OpenSlideVersion, "openslideVersion"));
  exports.Set("tileCache", Napi::Function::New(env, TileCache, "tileCache"));
  exports.Set("sweep", Napi::Function::New(env, Sweep, "sweep"));
  exports.Set("sweepSync", Napi::Function::New(env, SweepSync, "sweepSync"));
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo, "cpuInfo"));
  exports.Set("gpuInfo", Napi::Function::New(env, GpuInfo, "gpuInfo"));
  exports.Set("modelLimits", Napi::Function::New(env, ModelLimits, "modelLimits"));
  exports.Set("measureFmaPeak", Napi::Function::New(env, MeasureFmaPeak, "measureFmaPeak"));
  exports.Set("flopsPerPatch", Napi::Function::New(env, FlopsPerPatch, "flopsPerPatch"));
#ifdef FQA_HAVE_TIFF_JPEG
  exports.Set("encodeJpegTiles", Napi::Function::New(env, EncodeJpegTiles, "encodeJpegTiles"));
#endif
  exports.Set("version", Napi::String::New(env, FQA_VERSION));
#ifdef FQA_BUILT_WITH_WERROR
  exports.Set("builtWithWerror", Napi::Boolean::New(env, true));
#else
  exports.Set("builtWithWerror", Napi::Boolean::New(env, false));
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(fqa, Init)
