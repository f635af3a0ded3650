// unary.h — op codes of the unary / unaryBackward kernels (the order of UNARY in
// packages/kernels/src/types.ts) and which forward tensors each backward reads.
// Shared by the cpu and cuda backends.
#pragma once

namespace mbert {

enum UnaryOp { NEG, EXP, LOG, TANH, GELU, SQRT, ABS, RELU, SIGMOID, AFFINE, POW, RSQRT, SQUARE, UNARY_COUNT };

// The backward of `op` reads its input x / its output y (the other may be null).
inline bool unary_needs_x(int op) {
  return op == LOG || op == GELU || op == ABS || op == RELU || op == POW || op == SQUARE;
}
inline bool unary_needs_y(int op) { return op == EXP || op == TANH || op == SQRT || op == SIGMOID || op == RSQRT; }

}  // namespace mbert
