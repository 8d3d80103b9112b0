/**
 * The few protobuf wire-format writes an ONNX model needs (varints, length-delimited fields, packed
 * int64s, fixed32 floats): fqa writes its ONNX graphs itself, so no protobuf runtime is needed.
 */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  private push(bytes: Uint8Array): this {
    this.chunks.push(bytes);
    this.length += bytes.length;
    return this;
  }

  private static varint(value: bigint): Uint8Array {
    // int64 fields: negative values are their two's complement as a 10-byte varint.
    let v = BigInt.asUintN(64, value);
    const out: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      out.push(byte);
    } while (v !== 0n);
    return Uint8Array.from(out);
  }

  private key(field: number, wireType: 0 | 2 | 5): this {
    return this.push(ProtoWriter.varint(BigInt((field << 3) | wireType)));
  }

  /** A varint field (int32, int64, enum). */
  int(field: number, value: number | bigint): this {
    return this.key(field, 0).push(ProtoWriter.varint(BigInt(value)));
  }

  float(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    return this.key(field, 5).push(b);
  }

  bytes(field: number, value: Uint8Array): this {
    return this.key(field, 2).push(ProtoWriter.varint(BigInt(value.length))).push(value);
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** A nested message. */
  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  /** Repeated int64 in packed encoding. */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.push(ProtoWriter.varint(BigInt(v)));
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}
