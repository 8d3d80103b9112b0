"""Writes a DICOM VL Whole Slide Microscopy series with pydicom, and pydicom's decoding of it.

The oracle of test/dicom.test.ts. Reads a JSON spec on stdin:
  {"png": level-0 RGB PNG, "out": folder, "tile": 256, "mpp": 0.499,
   "levels": [[w, h, "VOLUME" or "THUMBNAIL"], ...]}
and writes, in "out":
  series/level<i>.dcm       the pyramid (level 0 VOLUME, then smaller VOLUME or THUMBNAIL images), one series, plus
                            series/label.dcm (a LABEL image of the series), series/ct.dcm (a
                            non-WSI DICOM file: another SOP class) and series/implicit.dcm (a WSI
                            header in Implicit VR Little Endian, which fqa does not parse)
  level<i>.pillow.rgb       level i stitched from the frames pydicom extracts
                            (pydicom.encaps.generate_pixel_data_frame), each decoded by Pillow to
                            RGB, cropped to TotalPixelMatrixColumns x Rows
  level<i>.pixel_array.rgb  level i stitched from pydicom's own pixel_array (Pillow handler: YCbCr
                            for YBR_FULL_422), converted with pydicom's convert_color_space
  <variant>/slide.dcm       hostile or unsupported variants of level 0 (see VARIANTS below)
Prints a JSON line with what it wrote.
"""
import io
import json
import os
import sys

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_pixel_data_frame
from pydicom.pixel_data_handlers.util import convert_color_space
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

WSI = "1.2.840.10008.5.1.4.1.1.77.1.6"
CT = "1.2.840.10008.5.1.4.1.1.2"


def tiles_of(rgb, tile):
    """TILED_FULL frames: row-major tiles, edge tiles padded with white."""
    h, w, _ = rgb.shape
    across, down = -(-w // tile), -(-h // tile)
    padded = np.full((down * tile, across * tile, 3), 255, np.uint8)
    padded[:h, :w] = rgb
    return [padded[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] for r in range(down) for c in range(across)]


def jpeg(tile):
    buf = io.BytesIO()
    # 4:2:2 chroma, as YBR_FULL_422 says; Pillow writes a JFIF (YCbCr) baseline JPEG.
    Image.fromarray(tile).save(buf, "JPEG", quality=90, subsampling=1)
    return buf.getvalue()


def wsi_dataset(rgb, tile, mpp, series, study, flavor, *, frames=None, organization="TILED_FULL"):
    h, w, _ = rgb.shape
    encoded = [jpeg(t) for t in tiles_of(rgb, tile)] if frames is None else frames
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = WSI
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds = Dataset()
    ds.file_meta = meta
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.SOPClassUID = WSI
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.Modality = "SM"
    ds.ImageType = ["DERIVED", "PRIMARY", flavor, "NONE"]
    ds.TotalPixelMatrixColumns = w
    ds.TotalPixelMatrixRows = h
    ds.Columns = tile
    ds.Rows = tile
    ds.NumberOfFrames = len(encoded)
    ds.DimensionOrganizationType = organization
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "01"
    measures = Dataset()
    measures.PixelSpacing = [mpp / 1000, mpp / 1000]
    measures.SliceThickness = 0.001
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    # Sequences fqa must walk past: optical path (defined length), per-frame positions (undefined).
    path = Dataset()
    path.OpticalPathIdentifier = "1"
    path.IlluminationColorCodeSequence = Sequence([Dataset()])
    ds.OpticalPathSequence = Sequence([path])
    ds.NumberOfOpticalPaths = 1
    ds.TotalPixelMatrixFocalPlanes = 1
    per_frame = []
    across = -(-w // tile)
    for i in range(len(encoded)):
        position = Dataset()
        position.ColumnPositionInTotalImagePixelMatrix = (i % across) * tile + 1
        position.RowPositionInTotalImagePixelMatrix = (i // across) * tile + 1
        item = Dataset()
        item.PlanePositionSlideSequence = Sequence([position])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.AcquisitionContextSequence = Sequence([])
    ds.PixelData = encapsulate(encoded, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return ds


def save(ds, file, undefined_lengths):
    os.makedirs(os.path.dirname(file), exist_ok=True)
    for name in undefined_lengths:
        # The sequence and its items end at delimiters instead of declaring their lengths.
        ds[name].is_undefined_length = True
        for item in ds[name].value:
            item.is_undefined_length_sequence_item = True
    ds.save_as(file, write_like_original=False)


def stitched_from_frames(file):
    """pydicom extracts each frame's bytes; Pillow decodes them to RGB (libjpeg's YCbCr->RGB)."""
    ds = pydicom.dcmread(file)
    w, h, t = ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows, ds.Columns
    across, down = -(-w // t), -(-h // t)
    out = np.zeros((down * t, across * t, 3), np.uint8)
    for i, frame in enumerate(generate_pixel_data_frame(ds.PixelData, int(ds.NumberOfFrames))):
        r, c = divmod(i, across)
        out[r * t:(r + 1) * t, c * t:(c + 1) * t] = np.asarray(Image.open(io.BytesIO(frame)).convert("RGB"))
    return out[:h, :w]


def stitched_pixel_array(file):
    """pydicom's pixel_array (its Pillow handler returns YCbCr for YBR_FULL_422), converted by pydicom."""
    ds = pydicom.dcmread(file)
    w, h, t = ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows, ds.Columns
    frames = convert_color_space(ds.pixel_array, "YBR_FULL", "RGB")
    if int(ds.NumberOfFrames) == 1:
        frames = frames[None]  # pixel_array has no frame axis for a single frame
    across, down = -(-w // t), -(-h // t)
    out = np.zeros((down * t, across * t, 3), np.uint8)
    for i in range(frames.shape[0]):
        r, c = divmod(i, across)
        out[r * t:(r + 1) * t, c * t:(c + 1) * t] = frames[i]
    return out[:h, :w]


def main():
    spec = json.load(sys.stdin)
    out, tile, mpp = spec["out"], spec["tile"], spec["mpp"]
    level0 = np.asarray(Image.open(spec["png"]).convert("RGB"))
    series, study = generate_uid(), generate_uid()
    written = {"levels": [], "pydicom": pydicom.__version__}
    for i, (w, h, flavor) in enumerate(spec["levels"]):
        rgb = level0 if i == 0 else np.asarray(Image.fromarray(level0).resize((w, h), Image.BOX))
        assert rgb.shape[:2] == (h, w), (rgb.shape, w, h)
        file = os.path.join(out, "series", f"level{i}.dcm")
        # Level 0's per-frame sequence with undefined lengths, level 1's defined: both forms read.
        save(wsi_dataset(rgb, tile, mpp * (level0.shape[1] / w), series, study, flavor), file,
             ["PerFrameFunctionalGroupsSequence", "OpticalPathSequence", "SharedFunctionalGroupsSequence"] if i == 0 else [])
        stitched_from_frames(file).tofile(os.path.join(out, f"level{i}.pillow.rgb"))
        stitched_pixel_array(file).tofile(os.path.join(out, f"level{i}.pixel_array.rgb"))
        written["levels"].append(file)
    # A label of the same series: part of the slide, never a level.
    label = np.asarray(Image.fromarray(level0[:200, :300]))
    save(wsi_dataset(label, 256, mpp, series, study, "LABEL"), os.path.join(out, "series", "label.dcm"), [])
    # A DICOM file of another SOP class (a CT slice header, no WSI geometry).
    ct = Dataset()
    ct.file_meta = FileMetaDataset()
    ct.file_meta.MediaStorageSOPClassUID = CT
    ct.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ct.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ct.is_little_endian, ct.is_implicit_VR = True, False
    ct.SOPClassUID, ct.SOPInstanceUID = CT, ct.file_meta.MediaStorageSOPInstanceUID
    ct.SeriesInstanceUID, ct.Modality = generate_uid(), "CT"
    ct.save_as(os.path.join(out, "series", "ct.dcm"), write_like_original=False)
    # A WSI header in Implicit VR Little Endian (no VRs: its dataset, series included, is not parsed).
    implicit = Dataset()
    implicit.file_meta = FileMetaDataset()
    implicit.file_meta.MediaStorageSOPClassUID = WSI
    implicit.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    implicit.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2"
    implicit.is_little_endian, implicit.is_implicit_VR = True, True
    implicit.SOPClassUID, implicit.SOPInstanceUID = WSI, implicit.file_meta.MediaStorageSOPInstanceUID
    implicit.SeriesInstanceUID = series
    implicit.save_as(os.path.join(out, "series", "implicit.dcm"), write_like_original=False)

    # Unsupported or broken variants of level 0, each alone in its folder.
    frames = [jpeg(t) for t in tiles_of(level0, tile)]
    variants = {
        "sparse": wsi_dataset(level0, tile, mpp, generate_uid(), study, "VOLUME", frames=frames, organization="TILED_SPARSE"),
        # NumberOfFrames that the TILED_FULL grid contradicts.
        "grid": wsi_dataset(level0, tile, mpp, generate_uid(), study, "VOLUME", frames=frames[:-1]),
        # The right NumberOfFrames, one fragment short.
        "frames": wsi_dataset(level0, tile, mpp, generate_uid(), study, "VOLUME", frames=frames[:-1]),
    }
    variants["frames"].NumberOfFrames = len(frames)
    j2k = wsi_dataset(level0, tile, mpp, generate_uid(), study, "VOLUME", frames=frames)
    j2k.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"  # labelled JPEG 2000: refused by its UID
    variants["jpeg2000"] = j2k
    for name, ds in variants.items():
        save(ds, os.path.join(out, name, "slide.dcm"), [])
    written["variants"] = sorted(variants)
    print(json.dumps(written))


main()
