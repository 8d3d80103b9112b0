// The torch training engine: a registry layer graph (the same one inference and the tfjs engine
// read) built on libtorch, trained with autograd, PyTorch's own BatchNorm and the Adam update of
// torch.optim.Adam. TypeScript owns the loop, the data, checkpoints and validation; this file only
// holds tensors and runs steps. Every libtorch error becomes a JS Error.
// The DARTS search network is a graph too: its mixed edges are 'mix' nodes (softmax-weighted sums by
// a row of the architecture tensor, kind 'architecture'), its BatchNorms without affine parameters
// 'norm' nodes; searchStep moves either the architecture (Adam) or the weights (SGD), as
// train_search.py does in first-order DARTS.
#include <napi.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

// One graph node with its value names resolved to slots.
struct Node {
  std::string op;
  std::vector<size_t> inputs;
  size_t output = 0;
  std::string weight, bias, prefix;
  int64_t kernel = 1, stride = 1, pad = 0, dilation = 1, groups = 1;
  int64_t inFeatures = 0, outFeatures = 0;
  std::vector<int64_t> rows, columns;  // mix: each input's (edge, op) entry of the architecture tensor
};

struct Parameter {
  std::string name;
  torch::Tensor value, m, v;
  torch::Tensor momentum;  // SGD's buffer (the search's weight steps)
};

enum class Loss { Plcc, Mse, Mae };

std::string stringField(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("graph node: '") + key + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

int64_t intField(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("graph node: '") + key + "' must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 1 << 20) || d != std::floor(d)) throw Napi::RangeError::New(o.Env(), std::string("graph node: '") + key + "' out of range");
  return static_cast<int64_t>(d);
}

Napi::Float32Array float32Field(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(o.Env(), std::string("'") + key + "' must be a Float32Array");
  return v.As<Napi::Float32Array>();
}

// A JS Float32Array copied into a tensor of `shape` (the JS memory may move or be freed later).
torch::Tensor tensorFrom(const Napi::Float32Array& a, const std::vector<int64_t>& shape, const std::string& name) {
  int64_t n = 1;
  for (int64_t s : shape)
    if (__builtin_mul_overflow(n, s, &n)) throw Napi::RangeError::New(a.Env(), "tensor '" + name + "': too many values");
  if (static_cast<int64_t>(a.ElementLength()) != n)
    throw Napi::RangeError::New(a.Env(), "tensor '" + name + "': " + std::to_string(a.ElementLength()) + " values for " + std::to_string(n));
  return torch::from_blob(const_cast<float*>(a.Data()), shape, torch::kFloat32).clone();
}

// A typed array argument of exactly the wanted element type (node-addon-api's As<> does not check).
template <typename T>
T typedArgument(const Napi::CallbackInfo& info, size_t index, napi_typedarray_type type, const char* what) {
  if (info.Length() <= index || !info[index].IsTypedArray() || info[index].As<Napi::TypedArray>().TypedArrayType() != type)
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a " + (type == napi_uint8_array ? "Uint8Array" : "Float32Array"));
  return info[index].As<T>();
}

// An integer argument from `min` to `max` (no NaN, no fraction).
int64_t integerArgument(const Napi::CallbackInfo& info, size_t index, const char* what, int64_t min, int64_t max) {
  double d = info.Length() > index && info[index].IsNumber() ? info[index].As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= double(min) && d <= double(max)) || d != std::floor(d))
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  return static_cast<int64_t>(d);
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Napi::Float32Array toJs(Napi::Env env, const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
  Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(c.numel()));
  std::memcpy(out.Data(), c.data_ptr<float>(), static_cast<size_t>(c.numel()) * sizeof(float));
  return out;
}

class GraphTrainer : public Napi::ObjectWrap<GraphTrainer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "GraphTrainer", {
      InstanceMethod<&GraphTrainer::Step>("step"),
      InstanceMethod<&GraphTrainer::Scores>("scores"),
      InstanceMethod<&GraphTrainer::SearchStep>("searchStep"),
      InstanceMethod<&GraphTrainer::Gradients>("gradients"),
      InstanceMethod<&GraphTrainer::Tensors>("tensors"),
      InstanceMethod<&GraphTrainer::Dispose>("dispose"),
    });
  }

  explicit GraphTrainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GraphTrainer>(info), device_(torch::kCPU) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "GraphTrainer(spec): spec must be an object");
    guarded(env, [&] { configure(info[0].As<Napi::Object>()); });
  }

 private:
  std::vector<Node> nodes_;
  size_t inputSlot_ = 0, outputSlot_ = 0, slots_ = 0;
  std::vector<Parameter> parameters_;
  std::vector<Parameter> architecture_;  // DARTS's alphas: trained only by searchStep('architecture')
  int64_t architectureStep_ = 0;
  bool sgdStarted_ = false;
  std::unordered_map<std::string, torch::Tensor> tensors_;  // parameters and buffers by name
  std::vector<std::string> order_;                            // every tensor, in the graph's order
  std::vector<std::pair<torch::Tensor, torch::Tensor>> gdns_; // (beta, gamma) kept valid after a step
  int64_t step_ = 0;
  Loss loss_ = Loss::Plcc;
  float table_[3][256] = {};
  bool channelsLast_ = false;
  torch::Device device_;
  bool disposed_ = false;

  template <typename F>
  static auto guarded(Napi::Env env, F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const Napi::Error&) {
      throw;
    } catch (const c10::Error& e) {
      throw Napi::Error::New(env, std::string("libtorch: ") + e.what_without_backtrace());
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, std::string("libtorch: ") + e.what());
    }
  }

  void configure(const Napi::Object& spec) {
    Napi::Env env = spec.Env();
    std::string device = spec.Has("device") ? stringField(spec, "device") : "cpu";
    if (device == "cuda" && !torch::cuda::is_available())
      throw Napi::Error::New(env, "device cuda: this libtorch has no CUDA device (Debian's libtorch is CPU-only)");
    if (device != "cpu" && device != "cuda") throw Napi::RangeError::New(env, "device must be 'cpu' or 'cuda'");
    device_ = torch::Device(device == "cuda" ? torch::kCUDA : torch::kCPU);
    int64_t threads = intField(spec, "threads");
    if (threads < 1) throw Napi::RangeError::New(env, "threads must be at least 1");
    torch::set_num_threads(static_cast<int>(threads));
    channelsLast_ = spec.Get("channelsLast").ToBoolean().Value();
    std::string loss = stringField(spec, "loss");
    loss_ = loss == "mse" ? Loss::Mse : loss == "mae" ? Loss::Mae : Loss::Plcc;
    if (loss != "mse" && loss != "mae" && loss != "plcc") throw Napi::RangeError::New(env, "loss must be plcc, mse or mae");
    Napi::Value step = spec.Get("step");
    if (!step.IsNumber() || !(step.As<Napi::Number>().DoubleValue() >= 0) || step.As<Napi::Number>().DoubleValue() > 9007199254740991.0 ||
        step.As<Napi::Number>().DoubleValue() != std::floor(step.As<Napi::Number>().DoubleValue()))
      throw Napi::RangeError::New(env, "step must be an integer from 0 to 2^53");
    step_ = static_cast<int64_t>(step.As<Napi::Number>().DoubleValue());

    // Input normalization as the tfjs engine's table: (v / 255 - mean) / std in double, then float.
    Napi::Value meanV = spec.Get("mean"), stdV = spec.Get("std");
    if (!meanV.IsArray() || !stdV.IsArray()) throw Napi::TypeError::New(env, "mean and std must be arrays of 3");
    for (uint32_t c = 0; c < 3; c++) {
      double mean = meanV.As<Napi::Array>().Get(c).ToNumber().DoubleValue();
      double sd = stdV.As<Napi::Array>().Get(c).ToNumber().DoubleValue();
      if (!(sd > 0) || !std::isfinite(mean)) throw Napi::RangeError::New(env, "std must be positive and mean finite");
      for (int v = 0; v < 256; v++) table_[c][v] = static_cast<float>((v / 255.0 - mean) / sd);
    }

    readTensors(spec);
    readNodes(spec);
  }

  void readTensors(const Napi::Object& spec) {
    Napi::Env env = spec.Env();
    Napi::Value list = spec.Get("tensors");
    if (!list.IsArray()) throw Napi::TypeError::New(env, "tensors must be an array");
    Napi::Array a = list.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Object t = a.Get(i).As<Napi::Object>();
      std::string name = stringField(t, "name");
      std::vector<int64_t> shape;
      Napi::Array s = t.Get("shape").As<Napi::Array>();
      for (uint32_t k = 0; k < s.Length(); k++) {
        double d = s.Get(k).ToNumber().DoubleValue();
        if (!(d >= 1 && d <= (1 << 24)) || d != std::floor(d)) throw Napi::RangeError::New(env, "tensor '" + name + "': shape entries must be integers from 1 to 2^24");
        shape.push_back(static_cast<int64_t>(d));
      }
      torch::Tensor value = tensorFrom(float32Field(t, "data"), shape, name).to(device_);
      if (channelsLast_ && shape.size() == 4) value = value.contiguous(torch::MemoryFormat::ChannelsLast);
      std::string kind = stringField(t, "kind");
      if (kind != "parameter" && kind != "buffer" && kind != "architecture") throw Napi::RangeError::New(env, "tensor '" + name + "': kind must be parameter, buffer or architecture");
      if (kind != "buffer") {
        Parameter p{name, value.requires_grad_(true), torch::zeros_like(value), torch::zeros_like(value), torch::zeros_like(value)};
        if (t.Has("m")) p.m.copy_(tensorFrom(float32Field(t, "m"), shape, name + "#adam.m"));
        if (t.Has("v")) p.v.copy_(tensorFrom(float32Field(t, "v"), shape, name + "#adam.v"));
        (kind == "parameter" ? parameters_ : architecture_).push_back(p);
      }
      if (tensors_.count(name)) throw Napi::Error::New(env, "tensor '" + name + "' given twice");
      tensors_[name] = value;
      order_.push_back(name);
    }
  }

  torch::Tensor& tensor(const std::string& name) {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw std::runtime_error("the graph names tensor '" + name + "', which was not given");
    return it->second;
  }

  void readNodes(const Napi::Object& spec) {
    Napi::Env env = spec.Env();
    std::unordered_map<std::string, size_t> slot;
    auto slotOf = [&](const std::string& name, bool create) -> size_t {
      auto it = slot.find(name);
      if (it != slot.end()) {
        if (create) throw Napi::Error::New(env, "graph: value '" + name + "' written twice");
        return it->second;
      }
      if (!create) throw Napi::Error::New(env, "graph: value '" + name + "' read before it is written");
      slot[name] = slots_;
      return slots_++;
    };
    inputSlot_ = slotOf(stringField(spec, "input"), true);
    Napi::Value list = spec.Get("nodes");
    if (!list.IsArray()) throw Napi::TypeError::New(env, "nodes must be an array");
    Napi::Array a = list.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Object o = a.Get(i).As<Napi::Object>();
      Node n;
      n.op = stringField(o, "op");
      Napi::Array inputs = o.Get("inputs").As<Napi::Array>();
      for (uint32_t k = 0; k < inputs.Length(); k++) n.inputs.push_back(slotOf(inputs.Get(k).ToString().Utf8Value(), false));
      if (n.inputs.empty()) throw Napi::Error::New(env, "graph: node " + std::to_string(i) + " has no input");
      if (n.op == "conv") {
        n.weight = stringField(o, "weight");
        n.bias = o.Get("bias").IsString() ? stringField(o, "bias") : "";
        n.kernel = intField(o, "kernel");
        n.stride = intField(o, "stride");
        n.pad = intField(o, "pad");
        n.dilation = intField(o, "dilation");
        n.groups = intField(o, "groups");
        tensor(n.weight);
        if (!n.bias.empty()) tensor(n.bias);
      } else if (n.op == "mix") {
        n.weight = stringField(o, "alpha");
        for (const char* key : {"rows", "columns"}) {
          Napi::Value list = o.Get(key);
          if (!list.IsArray()) throw Napi::TypeError::New(env, std::string("graph: mix node: '") + key + "' must be an array");
          Napi::Array a = list.As<Napi::Array>();
          for (uint32_t k = 0; k < a.Length(); k++) (key[0] == 'r' ? n.rows : n.columns).push_back(a.Get(k).ToNumber().Int64Value());
        }
        const torch::Tensor& alpha = tensor(n.weight);
        if (alpha.dim() != 2 || n.rows.size() != n.inputs.size() || n.columns.size() != n.inputs.size())
          throw Napi::Error::New(env, "graph: mix node " + std::to_string(i) + ": needs one (row, column) of a 2-D '" + n.weight + "' per input");
        for (size_t k = 0; k < n.rows.size(); k++)
          if (n.rows[k] < 0 || n.rows[k] >= alpha.size(0) || n.columns[k] < 0 || n.columns[k] >= alpha.size(1))
            throw Napi::Error::New(env, "graph: mix node " + std::to_string(i) + ": entry out of range of '" + n.weight + "'");
      } else if (n.op == "norm") {
      } else if (n.op == "batchnorm" || n.op == "gdn") {
        n.prefix = stringField(o, "prefix");
        if (n.op == "gdn") gdns_.emplace_back(tensor(n.prefix + ".beta"), tensor(n.prefix + ".gamma"));
      } else if (n.op == "maxpool" || n.op == "avgpool") {
        n.kernel = intField(o, "kernel");
        n.stride = intField(o, "stride");
        n.pad = intField(o, "pad");
      } else if (n.op == "linear") {
        n.weight = stringField(o, "weight");
        n.bias = stringField(o, "bias");
        n.outFeatures = intField(o, "outFeatures");
      } else if (n.op != "relu" && n.op != "relu6" && n.op != "globalavg" && n.op != "globalmax" && n.op != "globalmin" &&
                 n.op != "add" && n.op != "concat" && n.op != "shift") {
        throw Napi::Error::New(env, "graph: the torch engine has no op '" + n.op + "'");
      }
      // forward() reads exactly these inputs: a wrong count is an error here, not a read past the list.
      const bool many = n.op == "concat" || n.op == "mix";
      const size_t wanted = n.op == "add" ? 2 : 1;
      if (many ? n.inputs.empty() : n.inputs.size() != wanted)
        throw Napi::Error::New(env, "graph: node " + std::to_string(i) + " (" + n.op + ") takes " + (many ? std::string("at least 1 input") : std::to_string(wanted) + " input(s)") + ", has " + std::to_string(n.inputs.size()));
      n.output = slotOf(stringField(o, "output"), true);
      nodes_.push_back(n);
    }
    outputSlot_ = slotOf(stringField(spec, "output"), false);
  }

  // Normalized NCHW input from NHWC bytes, read in place from the JS buffer.
  torch::Tensor input(const Napi::Uint8Array& pixels, int64_t count, int64_t size) {
    if (count < 1 || count > (1 << 20) || size < 1 || size > 4096)
      throw Napi::RangeError::New(pixels.Env(), "patches: count must be 1 to 2^20 and size 1 to 4096 px");
    if (static_cast<int64_t>(pixels.ElementLength()) != count * size * size * 3)
      throw Napi::RangeError::New(pixels.Env(), "pixels: " + std::to_string(pixels.ElementLength()) + " bytes for " + std::to_string(count) + " patches of " + std::to_string(size) + " px");
    torch::Tensor x = torch::empty({count, 3, size, size}, torch::kFloat32);
    float* out = x.data_ptr<float>();
    const uint8_t* in = pixels.Data();
    const int64_t plane = size * size;
    for (int64_t b = 0; b < count; b++)
      for (int64_t p = 0; p < plane; p++)
        for (int64_t c = 0; c < 3; c++) out[(b * 3 + c) * plane + p] = table_[c][in[(b * plane + p) * 3 + c]];
    x = x.to(device_);
    return channelsLast_ ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
  }

  torch::Tensor forward(torch::Tensor x, bool training) {
    std::vector<torch::Tensor> values(slots_);
    values[inputSlot_] = std::move(x);
    for (const Node& n : nodes_) {
      const torch::Tensor& in = values[n.inputs[0]];
      torch::Tensor y;
      if (n.op == "conv") {
        y = torch::conv2d(in, tensor(n.weight), n.bias.empty() ? torch::Tensor() : tensor(n.bias), n.stride, n.pad, n.dilation, n.groups);
      } else if (n.op == "batchnorm") {
        // Training: batch statistics, running ones updated in place (momentum 0.1, unbiased variance).
        y = torch::batch_norm(in, tensor(n.prefix + ".weight"), tensor(n.prefix + ".bias"), tensor(n.prefix + ".running_mean"),
                              tensor(n.prefix + ".running_var"), training, 0.1, 1e-5, false);
      } else if (n.op == "norm") {
        // BatchNorm without affine parameters or running statistics (the search network's cells).
        y = torch::batch_norm(in, {}, {}, {}, {}, true, 0.1, 1e-5, false);
      } else if (n.op == "mix") {
        torch::Tensor weights = torch::softmax(tensor(n.weight), 1);
        for (size_t k = 0; k < n.inputs.size(); k++) {
          torch::Tensor term = values[n.inputs[k]] * weights[n.rows[k]][n.columns[k]];
          y = k == 0 ? term : y + term;
        }
      } else if (n.op == "relu") {
        y = torch::relu(in);
      } else if (n.op == "relu6") {
        y = torch::hardtanh(in, 0.0, 6.0);
      } else if (n.op == "maxpool") {
        y = torch::max_pool2d(in, n.kernel, n.stride, n.pad);
      } else if (n.op == "avgpool") {
        y = torch::avg_pool2d(in, n.kernel, n.stride, n.pad, false, false);
      } else if (n.op == "globalavg") {
        y = in.mean({2, 3}, true);
      } else if (n.op == "globalmax") {
        // A pool over the whole map (PyTorch's MaxPool2d): at a tie one cell gets the gradient, where amax splits it.
        y = torch::max_pool2d(in, {in.size(2), in.size(3)});
      } else if (n.op == "globalmin") {
        y = -torch::max_pool2d(-in, {in.size(2), in.size(3)});
      } else if (n.op == "add") {
        y = in + values[n.inputs[1]];
      } else if (n.op == "concat") {
        std::vector<torch::Tensor> parts;
        for (size_t k : n.inputs) parts.push_back(values[k]);
        y = torch::cat(parts, 1);
      } else if (n.op == "shift") {
        y = in.slice(2, 1).slice(3, 1);
      } else if (n.op == "gdn") {
        // norm_c = beta_c + sum_j gamma[j][c] x_j^2: a 1x1 conv of x^2 with weight gamma^T.
        const torch::Tensor& gamma = tensor(n.prefix + ".gamma");
        torch::Tensor w = gamma.t().reshape({gamma.size(1), gamma.size(0), 1, 1});
        y = in / torch::sqrt(torch::conv2d(in * in, w, tensor(n.prefix + ".beta")));
      } else {  // linear on a 1x1 map
        y = torch::linear(in.flatten(1), tensor(n.weight), tensor(n.bias)).reshape({in.size(0), n.outFeatures, 1, 1});
      }
      values[n.output] = std::move(y);
    }
    return values[outputSlot_].reshape({-1});
  }

  torch::Tensor lossOf(const torch::Tensor& scores, const torch::Tensor& labels) {
    if (loss_ == Loss::Mse) return (scores - labels).square().mean();
    if (loss_ == Loss::Mae) return (scores - labels).abs().mean();
    torch::Tensor a = scores - scores.mean();
    torch::Tensor b = labels - labels.mean();
    return 1 - (a * b).sum() / torch::sqrt(a.square().sum() * b.square().sum() + 1e-12);
  }

  void checkOpen(Napi::Env env) {
    if (disposed_) throw Napi::Error::New(env, "GraphTrainer: used after dispose()");
  }

  // step(pixels: Uint8Array NHWC, labels: Float32Array, count, size, learningRate) -> batch loss
  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    checkOpen(env);
    double rate = info.Length() > 4 && info[4].IsNumber() ? info[4].As<Napi::Number>().DoubleValue() : NAN;
    if (!(rate >= 0) || !std::isfinite(rate)) throw Napi::RangeError::New(env, "step: the learning rate must be a finite number >= 0");
    return guarded(env, [&] {
      torch::Tensor loss = backwardOn(info);
      adamStep(rate);
      return Napi::Number::New(env, loss.item<double>());
    });
  }

  // torch.optim.Adam's update (no weight decay, no amsgrad), then GDN kept a valid normalization.
  void adamStep(double rate) {
    torch::NoGradGuard noGrad;
    step_++;
    const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    const double correction1 = 1 - std::pow(beta1, static_cast<double>(step_));
    const double correction2 = 1 - std::pow(beta2, static_cast<double>(step_));
    for (Parameter& p : parameters_) {
      // As torch.optim: a parameter the loss did not reach (no gradient) is left as it is.
      torch::Tensor g = p.value.grad();
      if (!g.defined()) continue;
      p.m.mul_(beta1).add_(g, 1 - beta1);
      p.v.mul_(beta2).addcmul_(g, g, 1 - beta2);
      torch::Tensor denominator = (p.v.sqrt() / std::sqrt(correction2)).add_(eps);
      p.value.addcdiv_(p.m, denominator, -rate / correction1);
    }
    for (auto& [beta, gamma] : gdns_) {
      beta.clamp_min_(1e-6);
      gamma.clamp_min_(0);
    }
  }

  // Forward and backward on a batch: gradients of every parameter and architecture tensor.
  torch::Tensor backwardOn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Uint8Array pixels = typedArgument<Napi::Uint8Array>(info, 0, napi_uint8_array, "pixels");
    Napi::Float32Array labelsJs = typedArgument<Napi::Float32Array>(info, 1, napi_float32_array, "labels");
    int64_t count = integerArgument(info, 2, "count", 2, 1 << 20), size = integerArgument(info, 3, "size", 1, 4096);
    if (count < 2 || static_cast<int64_t>(labelsJs.ElementLength()) != count) throw Napi::RangeError::New(env, "one label per patch, at least 2 patches");
    torch::Tensor x = input(pixels, count, size);
    torch::Tensor labels = torch::from_blob(labelsJs.Data(), {count}, torch::kFloat32).to(device_, false, true);
    for (auto* group : {&parameters_, &architecture_})
      for (Parameter& p : *group) p.value.mutable_grad() = torch::Tensor();
    torch::Tensor loss = lossOf(forward(x, true), labels);
    loss.backward();
    return loss;
  }

  static torch::Tensor gradientOf(const Parameter& p) {
    return p.value.grad().defined() ? p.value.grad() : torch::zeros_like(p.value);
  }

  // searchStep(pixels, labels, count, size, 'architecture' | 'weights', settings) -> batch loss.
  // architecture: Adam (lr, betas 0.5 / 0.999) with L2 weight decay added to the gradient, as
  // torch.optim.Adam(weight_decay). weights: the gradient's global norm clipped (clip_grad_norm_),
  // then SGD with momentum and weight decay (torch.optim.SGD): train_search.py's order.
  Napi::Value SearchStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    checkOpen(env);
    if (info.Length() < 6 || !info[4].IsString() || !info[5].IsObject()) throw Napi::TypeError::New(env, "searchStep(pixels, labels, count, size, which, settings)");
    std::string which = info[4].As<Napi::String>().Utf8Value();
    Napi::Object o = info[5].As<Napi::Object>();
    auto number = [&](const char* key) {
      Napi::Value v = o.Get(key);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("searchStep settings: '") + key + "' must be a number");
      return v.As<Napi::Number>().DoubleValue();
    };
    if (which != "architecture" && which != "weights") throw Napi::RangeError::New(env, "searchStep: which must be 'architecture' or 'weights'");
    if (which == "architecture" && architecture_.empty()) throw Napi::Error::New(env, "searchStep: the graph has no architecture tensor");
    const double rate = number("learningRate"), decay = number("weightDecay");
    const double momentum = which == "weights" ? number("momentum") : 0, clip = which == "weights" ? number("gradClip") : 0;
    return guarded(env, [&] {
      torch::Tensor loss = backwardOn(info);
      torch::NoGradGuard noGrad;
      if (which == "architecture") {
        architectureStep_++;
        const double beta1 = 0.5, beta2 = 0.999, eps = 1e-8;
        const double correction1 = 1 - std::pow(beta1, static_cast<double>(architectureStep_));
        const double correction2 = 1 - std::pow(beta2, static_cast<double>(architectureStep_));
        for (Parameter& p : architecture_) {
          if (!p.value.grad().defined()) continue;
          torch::Tensor g = p.value.grad() + decay * p.value;
          p.m.mul_(beta1).add_(g, 1 - beta1);
          p.v.mul_(beta2).addcmul_(g, g, 1 - beta2);
          p.value.addcdiv_(p.m, (p.v.sqrt() / std::sqrt(correction2)).add_(eps), -rate / correction1);
        }
      } else {
        double total = 0;
        for (const Parameter& p : parameters_) total += gradientOf(p).square().sum().item<double>();
        const double scale = std::min(1.0, clip / (std::sqrt(total) + 1e-6));
        for (Parameter& p : parameters_) {
          if (!p.value.grad().defined()) continue;  // not reached by the loss: left alone, as torch.optim.SGD
          torch::Tensor g = p.value.grad() * scale + decay * p.value;
          if (sgdStarted_) p.momentum.mul_(momentum).add_(g);
          else p.momentum.copy_(g);
          p.value.add_(p.momentum, -rate);
        }
        sgdStarted_ = true;
      }
      return Napi::Number::New(env, loss.item<double>());
    });
  }

  // gradients(pixels, labels, count, size) -> { loss, gradients: { name: Float32Array } }; changes nothing.
  Napi::Value Gradients(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    checkOpen(env);
    return guarded(env, [&] {
      // Batch statistics only: the running ones are put back after the pass.
      std::vector<std::pair<torch::Tensor, torch::Tensor>> kept;
      for (auto& [name, t] : tensors_)
        if (endsWith(name, ".running_mean") || endsWith(name, ".running_var")) kept.emplace_back(t, t.clone());
      torch::Tensor loss = backwardOn(info);
      torch::NoGradGuard noGrad;
      for (auto& [t, saved] : kept) t.copy_(saved);
      Napi::Object out = Napi::Object::New(env);
      out.Set("loss", Napi::Number::New(env, loss.item<double>()));
      Napi::Object grads = Napi::Object::New(env);
      for (auto* group : {&parameters_, &architecture_})
        for (const Parameter& p : *group) grads.Set(p.name, toJs(env, gradientOf(p)));
      out.Set("gradients", grads);
      return out;
    });
  }

  // scores(pixels, count, size) -> Float32Array: inference (running statistics), no gradients.
  Napi::Value Scores(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    checkOpen(env);
    Napi::Uint8Array pixels = typedArgument<Napi::Uint8Array>(info, 0, napi_uint8_array, "scores: pixels");
    int64_t count = integerArgument(info, 1, "scores: count", 1, 1 << 20), size = integerArgument(info, 2, "scores: size", 1, 4096);
    return guarded(env, [&] {
      torch::NoGradGuard noGrad;
      return toJs(env, forward(input(pixels, count, size), false));
    });
  }

  // tensors(withAdam) -> { name: Float32Array } in PyTorch layouts; `${name}#adam.m` / `.v` with withAdam.
  Napi::Value Tensors(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    checkOpen(env);
    bool withAdam = info.Length() > 0 && info[0].ToBoolean().Value();
    return guarded(env, [&] {
      Napi::Object out = Napi::Object::New(env);
      out.Set("step", Napi::Number::New(env, static_cast<double>(step_)));
      Napi::Object values = Napi::Object::New(env);
      for (const std::string& name : order_) values.Set(name, toJs(env, tensors_[name]));
      if (withAdam)
        for (const Parameter& p : parameters_) {
          values.Set(p.name + "#adam.m", toJs(env, p.m));
          values.Set(p.name + "#adam.v", toJs(env, p.v));
        }
      out.Set("tensors", values);
      return out;
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    parameters_.clear();
    architecture_.clear();
    tensors_.clear();
    gdns_.clear();
    disposed_ = true;
    return info.Env().Undefined();
  }
};

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("torchVersion", Napi::String::New(env, std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH)));
  o.Set("cuda", Napi::Boolean::New(env, torch::cuda::is_available()));
  o.Set("cudaDevices", Napi::Number::New(env, static_cast<double>(torch::cuda::device_count())));
  o.Set("threads", Napi::Number::New(env, torch::get_num_threads()));
  return o;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("GraphTrainer", GraphTrainer::Define(env));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo));
  return exports;
}

NODE_API_MODULE(fqa_torch, Init)
