/**
 * The contract between @mbert/tensor and the native addon.
 *
 * Both backends (`cpu`, always built, and `cuda`, built when nvcc is found)
 * export the same functions with the same argument order. Every buffer is a
 * raw address (`Ptr`, a JavaScript number; 0 means "absent") returned by the
 * backend's own `alloc`. Sizes, offsets and strides are counted in elements
 * of the buffer's dtype unless the name says bytes.
 *
 * Accumulation rule (as in llm.c): kernels write activations and input
 * gradients with `=`; parameter-gradient outputs take an `accumulate` flag
 * (`+=` when true) so microbatches add up.
 *
 * Shape vocabulary: T tokens (unpadded), C hidden, NH heads, HS head size,
 * I intermediate, V vocab, B sequences, N elements.
 */

/** A raw address of a backend buffer (0 = none). */
export type Ptr = number;

/** Numeric dtype codes shared with the addon (`native/common/dtype.h`). */
export const DTYPE_CODES = { float32: 0, float64: 1, bfloat16: 2, int32: 3 } as const;
export type DTypeName = keyof typeof DTYPE_CODES;
export type DTypeCode = (typeof DTYPE_CODES)[DTypeName];
export const DTYPE_BYTES: Record<DTypeName, number> = { float32: 4, float64: 8, bfloat16: 2, int32: 4 };

/**
 * Unary op codes. `y = f(x; alpha, beta)`.
 * Backward: `dx = dy * f'(x)`, computed from x and/or y as noted.
 */
export const UNARY = {
  neg: 0, // -x
  exp: 1, // e^x                  (bwd uses y)
  log: 2, // ln x                 (bwd uses x)
  tanh: 3, // tanh x              (bwd uses y)
  gelu: 4, // exact: x * 0.5 * (1 + erf(x / sqrt 2))  (bwd uses x)
  sqrt: 5, // sqrt x              (bwd uses y)
  abs: 6, // |x|                  (bwd uses x)
  relu: 7, // max(x, 0)           (bwd uses x)
  sigmoid: 8, // 1 / (1 + e^-x)   (bwd uses y)
  affine: 9, // alpha * x + beta  (bwd: alpha)
  pow: 10, // x ^ alpha           (bwd uses x)
  rsqrt: 11, // 1 / sqrt x        (bwd uses y)
  square: 12, // x * x            (bwd uses x)
} as const;
export type UnaryOp = keyof typeof UNARY;

/**
 * Binary op codes, with broadcasting through strides of 0.
 * Comparisons write 1 or 0 in the output dtype.
 */
export const BINARY = {
  add: 0,
  sub: 1,
  mul: 2,
  div: 3,
  maximum: 4,
  minimum: 5,
  pow: 6,
  eq: 7,
  gt: 8,
  lt: 9,
  ge: 10,
  le: 11,
} as const;
export type BinaryOp = keyof typeof BINARY;

/** Reduction codes over the middle axis of a (outer, size, inner) view. */
export const REDUCE = { sum: 0, max: 1, min: 2, sumsq: 3 } as const;
export type ReduceOp = keyof typeof REDUCE;

export interface MemoryStats {
  /** Bytes handed out by `alloc` and not yet freed. */
  allocated: number;
  /** Bytes held from the system/driver (allocated + cached free blocks). */
  reserved: number;
  /** Highest `allocated` seen since the last `resetPeak`. */
  peak: number;
  /** Live allocations. */
  count: number;
}

/**
 * One backend's kernels. `stat` buffers (LayerNorm mean/rstd, softmax and
 * attention log-sum-exp, cross-entropy loss) are float64 when `dtype` is
 * float64 and float32 otherwise. `gradDtype`/`outDtype` arguments let a
 * kernel read bf16 activations and write fp32 parameter gradients.
 */
export interface BackendKernels {
  // ---- memory -------------------------------------------------------------
  /** Allocates `bytes` (rounded up internally; 256-byte aligned). Throws `OutOfMemory`. */
  alloc(bytes: number): Ptr;
  free(ptr: Ptr): void;
  memoryStats(): MemoryStats;
  resetPeak(): void;
  /** Returns cached free blocks to the system/driver. */
  emptyCache(): void;
  /** Host -> backend copy of `src.byteLength` bytes to `dst + dstOffsetBytes`. */
  upload(dst: Ptr, dstOffsetBytes: number, src: ArrayBufferView): void;
  /** Backend -> host copy of `dst.byteLength` bytes (waits for queued work). */
  download(src: Ptr, srcOffsetBytes: number, dst: ArrayBufferView): void;
  /** Backend -> backend copy of `bytes`. */
  copy(dst: Ptr, dstOffsetBytes: number, src: Ptr, srcOffsetBytes: number, bytes: number): void;
  /** Waits for all queued work (no-op on the CPU). */
  synchronize(): void;

  // ---- elementwise ----------------------------------------------------------
  /** out(N) = value. */
  fill(dtype: DTypeCode, out: Ptr, n: number, value: number): void;
  /** out(N) = f(x(N)); out may equal x. */
  unary(op: number, dtype: DTypeCode, out: Ptr, x: Ptr, n: number, alpha: number, beta: number): void;
  /** dx(N) = dy * f'(x); `x` and `y` are the forward input and output (either may be 0 when unused). */
  unaryBackward(
    op: number,
    dtype: DTypeCode,
    dx: Ptr,
    dy: Ptr,
    x: Ptr,
    y: Ptr,
    n: number,
    alpha: number,
    beta: number,
  ): void;
  /**
   * out[idx] = a[idx . aStrides] (op) b[idx . bStrides] for every index of
   * `shape` (row-major, out contiguous). Strides of 0 broadcast.
   */
  binary(
    op: number,
    dtype: DTypeCode,
    out: Ptr,
    a: Ptr,
    b: Ptr,
    shape: number[],
    aStrides: number[],
    bStrides: number[],
  ): void;
  /**
   * out[outOffset + idx . outStrides] = x[xOffset + idx . xStrides] for every
   * index of `shape`. Covers permute, slice, expand, concat and pad.
   */
  stridedCopy(
    dtype: DTypeCode,
    out: Ptr,
    outOffset: number,
    outStrides: number[],
    x: Ptr,
    xOffset: number,
    xStrides: number[],
    shape: number[],
  ): void;
  /** out(N) in outDtype = x(N) in xDtype (bf16 rounds to nearest even). */
  cast(outDtype: DTypeCode, out: Ptr, xDtype: DTypeCode, x: Ptr, n: number): void;

  // ---- reductions -----------------------------------------------------------
  /** out(outer, inner) = reduce over the middle axis of x(outer, size, inner). size 0: sum 0, max -inf. */
  reduce(op: number, dtype: DTypeCode, out: Ptr, x: Ptr, outer: number, size: number, inner: number): void;
  /** out int32 (outer, inner) = argmax over the middle axis (first on ties). */
  argmax(dtype: DTypeCode, out: Ptr, x: Ptr, outer: number, size: number, inner: number): void;
  /** out(1) (stat dtype) (+)= sum(x(N)^2); for global gradient norms. */
  sumSquares(dtype: DTypeCode, out: Ptr, x: Ptr, n: number, accumulate: boolean): void;
  /**
   * out(1) (stat dtype: float64 for float64, else float32) (+)= the sum of x^2
   * over many tensors of one dtype in one pass (one launch on CUDA, with a
   * fixed summation order). `table` holds 2 numbers per tensor: x, n.
   */
  sumSquaresList(dtype: DTypeCode, out: Ptr, table: Float64Array, accumulate: boolean): void;

  // ---- matmul -----------------------------------------------------------------
  /**
   * out[b] = alpha * op(A[b]) @ op(B[b]) + beta * out[b], row-major, for b < batch.
   * op(A) is (M, K): A is (M, K), or (K, M) when transA. op(B) is (K, N): B is
   * (K, N), or (N, K) when transB. `strideA/B/Out` are elements between
   * batches (0 broadcasts). A and B have `dtype`; out has `outDtype` (on CUDA
   * bf16 inputs may write float32 or bf16; accumulation is always fp32).
   * beta = 0 never reads out. `bias` (N elements of outDtype; 0 or absent:
   * none) is added to every row of every out[b]: on CUDA inside cuBLASLt's
   * epilogue (to the fp32 accumulator, one rounding) when batch = 1.
   */
  matmul(
    dtype: DTypeCode,
    outDtype: DTypeCode,
    out: Ptr,
    a: Ptr,
    b: Ptr,
    batch: number,
    M: number,
    N: number,
    K: number,
    transA: boolean,
    transB: boolean,
    alpha: number,
    beta: number,
    strideA: number,
    strideB: number,
    strideOut: number,
    bias?: Ptr,
  ): void;
  /** out(rows, cols) += bias(cols), in place. */
  addBias(dtype: DTypeCode, out: Ptr, bias: Ptr, rows: number, cols: number): void;
  /** dbias(cols) in gradDtype (+)= sum over rows of dy(rows, cols). */
  biasGrad(
    dtype: DTypeCode,
    gradDtype: DTypeCode,
    dbias: Ptr,
    dy: Ptr,
    rows: number,
    cols: number,
    accumulate: boolean,
  ): void;

  // ---- softmax ----------------------------------------------------------------
  /** y(rows, cols) = softmax(x) or log_softmax(x) over the last axis. */
  softmaxForward(dtype: DTypeCode, y: Ptr, x: Ptr, rows: number, cols: number, log: boolean): void;
  /** dx = y * (dy - sum(dy * y)) for softmax; dx = dy - exp(y) * sum(dy) for log_softmax. */
  softmaxBackward(dtype: DTypeCode, dx: Ptr, dy: Ptr, y: Ptr, rows: number, cols: number, log: boolean): void;

  // ---- layer norm ---------------------------------------------------------------
  /**
   * out(rows, C) = (h - mean) * rstd * weight + bias, with h = x + residual
   * when `residual` is given (then h is also written to `residualOut`, which may
   * be 0 to skip). mean, rstd: (rows) stat dtype. weight, bias: (C) in dtype.
   * With dropoutP > 0, h = dropout(x) + residual: x dropped out exactly as
   * dropoutForward(x, p, seed, offset) stores it (then residual and residualOut
   * are required); dropoutP = 0 ignores seed and offset.
   */
  layernormForward(
    dtype: DTypeCode,
    out: Ptr,
    mean: Ptr,
    rstd: Ptr,
    x: Ptr,
    residual: Ptr,
    residualOut: Ptr,
    weight: Ptr,
    bias: Ptr,
    rows: number,
    C: number,
    eps: number,
    dropoutP: number,
    dropoutSeed: number,
    dropoutOffset: number,
  ): void;
  /**
   * dx(rows, C) = gradient w.r.t. h (the normalized input). dweight, dbias (C)
   * in gradDtype, (+)= by `accumulate`; either may be 0 to skip. `x` is h.
   * With dropoutP > 0 (h = dropout(x') + residual in the forward),
   * dxDropout(rows, C) also receives the gradient w.r.t. x': dx through the
   * same mask, exactly as dropoutBackward(dx, p, seed, offset) writes it.
   */
  layernormBackward(
    dtype: DTypeCode,
    gradDtype: DTypeCode,
    dx: Ptr,
    dweight: Ptr,
    dbias: Ptr,
    dy: Ptr,
    x: Ptr,
    mean: Ptr,
    rstd: Ptr,
    weight: Ptr,
    rows: number,
    C: number,
    accumulate: boolean,
    dxDropout: Ptr,
    dropoutP: number,
    dropoutSeed: number,
    dropoutOffset: number,
  ): void;

  // ---- GeGLU ---------------------------------------------------------------------
  /**
   * out(rows, I) = gelu(x[:, :I]) * x[:, I:], x: (rows, 2I). With p > 0 the
   * output is dropped out in the same pass: exactly
   * `dropoutForward(out, p, seed, offset)` over the (rows, I) output.
   * p = 0 turns that off (seed and offset are then unused).
   */
  gegluForward(
    dtype: DTypeCode,
    out: Ptr,
    x: Ptr,
    rows: number,
    I: number,
    p: number,
    seed: number,
    offset: number,
  ): void;
  /**
   * dx(rows, 2I) from dy(rows, I) and x(rows, 2I). With p > 0, dy first goes
   * through the forward's dropout mask (as `dropoutBackward` with the same
   * p, seed and offset).
   */
  gegluBackward(
    dtype: DTypeCode,
    dx: Ptr,
    dy: Ptr,
    x: Ptr,
    rows: number,
    I: number,
    p: number,
    seed: number,
    offset: number,
  ): void;

  // ---- rows: embedding, gather, scatter -----------------------------------------
  /**
   * out(n, rowSize) = table[idx[i]] for i < n; idx int32. An index outside
   * [0, numRows) throws (CPU) or is reported by the next sync (CUDA).
   */
  indexSelect(
    dtype: DTypeCode,
    out: Ptr,
    table: Ptr,
    idx: Ptr,
    n: number,
    rowSize: number,
    numRows: number,
  ): void;
  /** out[idx[i]] (gradDtype) += src[i] (dtype), deterministic (fixed order) on every backend. */
  indexAdd(
    dtype: DTypeCode,
    gradDtype: DTypeCode,
    out: Ptr,
    src: Ptr,
    idx: Ptr,
    n: number,
    rowSize: number,
    numRows: number,
  ): void;
  /** out[idx[i]] = src[i] (rows of rowSize); indices must be distinct. */
  indexCopy(
    dtype: DTypeCode,
    out: Ptr,
    src: Ptr,
    idx: Ptr,
    n: number,
    rowSize: number,
    numRows: number,
  ): void;

  // ---- randomness (Philox4x32-10; identical streams on every backend) -------------
  /**
   * Element i draws from philox(key = seed, counter = offset + i): u = (word0 >> 8) * 2^-24.
   * out(N) = low + (high - low) * u.
   */
  randUniform(
    dtype: DTypeCode,
    out: Ptr,
    n: number,
    seed: number,
    offset: number,
    low: number,
    high: number,
  ): void;
  /** Element i: Box-Muller on words 0 and 1 of philox(seed, offset + i). */
  randNormal(
    dtype: DTypeCode,
    out: Ptr,
    n: number,
    seed: number,
    offset: number,
    mean: number,
    std: number,
  ): void;
  /**
   * One Philox call feeds 4 elements: element i uses word (i & 3) of
   * philox(key = seed, counter = offset + (i >> 2)), u_i = (word >> 8) * 2^-24,
   * and is dropped when u_i < p (compared in float32); kept ones are scaled by
   * 1/(1-p). Uses counters offset .. offset + ceil(n / 4) - 1.
   */
  dropoutForward(
    dtype: DTypeCode,
    out: Ptr,
    x: Ptr,
    n: number,
    p: number,
    seed: number,
    offset: number,
  ): void;
  /** Same mask as the forward with the same (seed, offset). */
  dropoutBackward(
    dtype: DTypeCode,
    dx: Ptr,
    dy: Ptr,
    n: number,
    p: number,
    seed: number,
    offset: number,
  ): void;

  // ---- cross-entropy ----------------------------------------------------------------
  /**
   * loss(rows), lse(rows) (stat dtype) from logits(rows, V) and labels int32(rows).
   * Rows whose label equals ignoreIndex get loss 0. A label outside [0, V) that
   * is not ignoreIndex throws (CPU) or is reported by the next sync (CUDA).
   */
  crossEntropyForward(
    dtype: DTypeCode,
    loss: Ptr,
    lse: Ptr,
    logits: Ptr,
    labels: Ptr,
    rows: number,
    V: number,
    ignoreIndex: number,
  ): void;
  /** dlogits(rows, V) = scale * (softmax(logits) - onehot(label)); ignored rows get 0. */
  crossEntropyBackward(
    dtype: DTypeCode,
    dlogits: Ptr,
    logits: Ptr,
    lse: Ptr,
    labels: Ptr,
    rows: number,
    V: number,
    ignoreIndex: number,
    scale: number,
  ): void;

  // ---- attention -----------------------------------------------------------------------
  /**
   * Non-causal scaled dot-product attention over packed sequences.
   * q, k, v: (T, NH, HS) rows `qkvStride` elements apart (3*NH*HS for a
   * packed (T, 3, NH, HS) buffer, NH*HS for separate tensors); out: (T, NH, HS)
   * contiguous; lse: (NH, T) stat dtype. cuSeqlens int32 (B+1) on the same
   * backend. Score(i, j) = scale * q_i.k_j - slope_h * |i - j| (slopes float32
   * (NH) or 0 for none) + keyBias[j] (float32 (T) or 0: additive key mask for
   * the padded BERT form). No (S, S) tensor is materialized on CUDA.
   */
  attentionForward(
    dtype: DTypeCode,
    out: Ptr,
    lse: Ptr,
    q: Ptr,
    k: Ptr,
    v: Ptr,
    qkvStride: number,
    cuSeqlens: Ptr,
    B: number,
    T: number,
    NH: number,
    HS: number,
    maxSeqlen: number,
    slopes: Ptr,
    keyBias: Ptr,
    scale: number,
  ): void;
  /** dq, dk, dv written (=) with the same `qkvStride` layout as q, k, v. */
  attentionBackward(
    dtype: DTypeCode,
    dq: Ptr,
    dk: Ptr,
    dv: Ptr,
    dout: Ptr,
    out: Ptr,
    lse: Ptr,
    q: Ptr,
    k: Ptr,
    v: Ptr,
    qkvStride: number,
    cuSeqlens: Ptr,
    B: number,
    T: number,
    NH: number,
    HS: number,
    maxSeqlen: number,
    slopes: Ptr,
    keyBias: Ptr,
    scale: number,
  ): void;

  // ---- optimizer ----------------------------------------------------------------------
  /**
   * One AdamW step over n elements. param, m, v: float32 (or float64 on CPU,
   * = dtype); grad in gradDtype, multiplied by gradScale first. Weight decay
   * multiplies param by (1 - decayFactor) before the Adam update (the caller
   * computes decayFactor: lr*wd for torch AdamW, lr/initialLr*wd for
   * Composer's DecoupledAdamW). When paramCopy != 0 it receives the updated
   * param in copyDtype (the bf16 weights of the next forward).
   * p -= lr/(1-beta1^step) * m / (sqrt(v/(1-beta2^step)) + eps).
   */
  adamw(
    dtype: DTypeCode,
    gradDtype: DTypeCode,
    param: Ptr,
    grad: Ptr,
    m: Ptr,
    v: Ptr,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    decayFactor: number,
    step: number,
    gradScale: number,
    copyDtype: DTypeCode,
    paramCopy: Ptr,
  ): void;
  /**
   * The `adamw` step over many tensors at once (one launch on CUDA). `table`
   * holds 9 numbers per tensor: param, grad, m, v, paramCopy (0: none), n,
   * lr, decayFactor, step; every gradient has gradDtype and every copy
   * copyDtype. When clipSumSquares != 0 it points at a sum of squares (the
   * stat dtype, as sumSquaresList writes it) and every gradient is further
   * multiplied by maxNorm / (norm + 1e-6) when norm = its square root is
   * finite and above maxNorm: clipping by global norm without reading the
   * norm on the host.
   */
  adamwList(
    dtype: DTypeCode,
    gradDtype: DTypeCode,
    copyDtype: DTypeCode,
    table: Float64Array,
    beta1: number,
    beta2: number,
    eps: number,
    gradScale: number,
    clipSumSquares: Ptr,
    maxNorm: number,
  ): void;
}

/** Why a backend is unusable, when it is. */
export interface BackendStatus {
  available: boolean;
  /** e.g. "built without nvcc", "no CUDA device: cudaGetDeviceCount returned 100 (no CUDA-capable device is detected)". */
  reason?: string;
  /** Device description when available (name, compute capability, memory). */
  device?: string;
}

export interface CudaExtras {
  /** Number of visible devices (0 when none). */
  deviceCount(): number;
  /** Records an event on the stream and returns its handle. */
  eventRecord(): number;
  /** Milliseconds between two recorded events (waits for the second). */
  eventElapsed(start: number, end: number): number;
  eventDestroy(event: number): void;
  /** Reads and clears the device-side error flag (bad index/label) set by kernels since the last call. */
  takeDeviceError(): string | null;
}

/** What the addon module exports. */
export interface NativeAddon {
  cpu: BackendKernels & { setNumThreads(n: number): void; numThreads(): number };
  /** Present when the addon was built with nvcc; usable when `cudaStatus().available`. */
  cuda?: BackendKernels & CudaExtras;
  cudaStatus(): BackendStatus;
  buildInfo(): { cuda: boolean; compiler: string; flags: string };
}
