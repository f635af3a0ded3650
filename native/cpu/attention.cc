// attention.cc — reference (materializing) attention over packed variable-length
// sequences with ALiBi slopes and an optional additive key bias; the CPU twin
// of the fused CUDA kernel. Accumulation: out, lse, dq, dk, dv written `=`.
// Scores, softmax and dot products accumulate in double for every dtype; one
// sequence's (S, S) probability matrix is materialized per (sequence, head) in
// backward, one score row per query in forward.
//
// q, k, v: (T, NH, HS) rows qkvStride apart  out: (T, NH, HS)  lse: (NH, T)
// cuSeqlens: int32 (B+1)  slopes: float32 (NH) or 0  keyBias: float32 (T) or 0
// score(i, j) = scale * q_i . k_j - slope_h * |i - j| + keyBias[j]
#include <cmath>
#include <vector>

#include "cpu/cpu.h"

namespace mbert {
namespace cpu {
namespace {

struct AttnArgs {
  int64_t B, T, NH, HS, stride, max_seqlen;
  const int32_t* cu;
  const float* slopes;
  const float* key_bias;
  double scale;
};

void check_cu_seqlens(const char* fn, const AttnArgs& p) {
  MBERT_CHECK(p.cu[0] == 0, fn, ": cuSeqlens[0] must be 0, got ", p.cu[0]);
  for (int64_t b = 0; b < p.B; ++b) {
    int64_t len = int64_t(p.cu[b + 1]) - p.cu[b];
    MBERT_CHECK(len >= 0, fn, ": cuSeqlens must be non-decreasing (cuSeqlens[", b + 1, "] = ", p.cu[b + 1],
                " < cuSeqlens[", b, "] = ", p.cu[b], ")");
    MBERT_CHECK(len <= p.max_seqlen, fn, ": sequence ", b, " has length ", len, " > maxSeqlen ", p.max_seqlen);
  }
  MBERT_CHECK(p.cu[p.B] == p.T, fn, ": cuSeqlens[B] = ", p.cu[p.B], " must equal T = ", p.T);
}

// Scores of query i against keys [s0, s1) of its sequence, into row (length s1 - s0).
template <typename T>
void score_row(const AttnArgs& p, const T* q, const T* k, int64_t h, int64_t i, int64_t s0, int64_t s1, double* row) {
  const T* qi = q + i * p.stride + h * p.HS;
  double slope = p.slopes ? double(p.slopes[h]) : 0.0;
  for (int64_t j = s0; j < s1; ++j) {
    const T* kj = k + j * p.stride + h * p.HS;
    double d = 0;
    for (int64_t e = 0; e < p.HS; ++e) d += double(qi[e]) * double(kj[e]);
    double s = p.scale * d - slope * double(i > j ? i - j : j - i);
    if (p.key_bias) s += double(p.key_bias[j]);
    row[j - s0] = s;
  }
}

template <typename T>
void attention_forward(const AttnArgs& p, T* out, acc_t<T>* lse, const T* q, const T* k, const T* v) {
  using A = acc_t<T>;
  // token -> sequence
  std::vector<int64_t> seq_of(static_cast<std::size_t>(p.T));
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t t = p.cu[b]; t < p.cu[b + 1]; ++t) seq_of[t] = b;
  parallel_for(p.T * p.NH, 4, [&](int64_t lo, int64_t hi) {
    std::vector<double> row(static_cast<std::size_t>(p.max_seqlen));
    std::vector<double> acc(static_cast<std::size_t>(p.HS));
    for (int64_t task = lo; task < hi; ++task) {
      int64_t i = task / p.NH, h = task % p.NH;
      int64_t b = seq_of[i], s0 = p.cu[b], s1 = p.cu[b + 1];
      score_row(p, q, k, h, i, s0, s1, row.data());
      double m = -INFINITY;
      for (int64_t j = 0; j < s1 - s0; ++j) m = std::max(m, row[j]);
      std::fill(acc.begin(), acc.end(), 0.0);
      double l = 0;
      if (m > -INFINITY) {
        for (int64_t j = 0; j < s1 - s0; ++j) {
          double pj = std::exp(row[j] - m);
          l += pj;
          const T* vj = v + (s0 + j) * p.stride + h * p.HS;
          for (int64_t e = 0; e < p.HS; ++e) acc[e] += pj * double(vj[e]);
        }
      }
      T* o = out + (i * p.NH + h) * p.HS;
      for (int64_t e = 0; e < p.HS; ++e) o[e] = T(A(l > 0 ? acc[e] / l : 0.0));
      lse[h * p.T + i] = A(l > 0 ? m + std::log(l) : -INFINITY);
    }
  });
}

template <typename T>
void attention_backward(const AttnArgs& p, T* dq, T* dk, T* dv, const T* dout, const T* out, const acc_t<T>* lse,
                        const T* q, const T* k, const T* v) {
  using A = acc_t<T>;
  parallel_for(p.B * p.NH, 1, [&](int64_t lo, int64_t hi) {
    std::vector<double> P, dS, Dv, gq, gk, gv;
    for (int64_t task = lo; task < hi; ++task) {
      int64_t b = task / p.NH, h = task % p.NH;
      int64_t s0 = p.cu[b], S = p.cu[b + 1] - s0;
      if (S == 0) continue;
      std::size_t SS = static_cast<std::size_t>(S * S), SH = static_cast<std::size_t>(S * p.HS);
      P.assign(SS, 0.0);
      dS.assign(SS, 0.0);
      Dv.assign(static_cast<std::size_t>(S), 0.0);
      gq.assign(SH, 0.0);
      gk.assign(SH, 0.0);
      gv.assign(SH, 0.0);
      // P(i, j) = exp(score - lse_i);  D_i = dO_i . O_i
      for (int64_t i = 0; i < S; ++i) {
        double* Pi = P.data() + i * S;
        score_row(p, q, k, h, s0 + i, s0, s0 + S, Pi);
        double l = double(lse[h * p.T + s0 + i]);
        for (int64_t j = 0; j < S; ++j) Pi[j] = l > -INFINITY ? std::exp(Pi[j] - l) : 0.0;
        const T* doi = dout + ((s0 + i) * p.NH + h) * p.HS;
        const T* oi = out + ((s0 + i) * p.NH + h) * p.HS;
        double d = 0;
        for (int64_t e = 0; e < p.HS; ++e) d += double(doi[e]) * double(oi[e]);
        Dv[i] = d;
      }
      // dV_j = sum_i P_ij dO_i;  dS_ij = P_ij (dO_i . v_j - D_i)
      for (int64_t i = 0; i < S; ++i) {
        const T* doi = dout + ((s0 + i) * p.NH + h) * p.HS;
        const double* Pi = P.data() + i * S;
        double* dSi = dS.data() + i * S;
        for (int64_t j = 0; j < S; ++j) {
          const T* vj = v + (s0 + j) * p.stride + h * p.HS;
          double dp = 0;
          double* gvj = gv.data() + j * p.HS;
          for (int64_t e = 0; e < p.HS; ++e) {
            dp += double(doi[e]) * double(vj[e]);
            gvj[e] += Pi[j] * double(doi[e]);
          }
          dSi[j] = Pi[j] * (dp - Dv[i]);
        }
      }
      // dQ_i = scale sum_j dS_ij k_j;  dK_j = scale sum_i dS_ij q_i
      for (int64_t i = 0; i < S; ++i) {
        const double* dSi = dS.data() + i * S;
        const T* qi = q + (s0 + i) * p.stride + h * p.HS;
        double* gqi = gq.data() + i * p.HS;
        for (int64_t j = 0; j < S; ++j) {
          const T* kj = k + (s0 + j) * p.stride + h * p.HS;
          double* gkj = gk.data() + j * p.HS;
          double w = dSi[j] * p.scale;
          for (int64_t e = 0; e < p.HS; ++e) {
            gqi[e] += w * double(kj[e]);
            gkj[e] += w * double(qi[e]);
          }
        }
      }
      for (int64_t i = 0; i < S; ++i) {
        int64_t off = (s0 + i) * p.stride + h * p.HS;
        for (int64_t e = 0; e < p.HS; ++e) {
          dq[off + e] = T(A(gq[i * p.HS + e]));
          dk[off + e] = T(A(gk[i * p.HS + e]));
          dv[off + e] = T(A(gv[i * p.HS + e]));
        }
      }
    }
  });
}

// Reads the shared trailing arguments starting at `first` (qkvStride).
AttnArgs attn_args(const Args& a, int first) {
  AttnArgs p;
  p.stride = a.size(first, "qkvStride");
  p.B = a.size(first + 2, "B");
  p.T = a.size(first + 3, "T");
  p.NH = a.size(first + 4, "NH");
  p.HS = a.size(first + 5, "HS");
  p.max_seqlen = a.size(first + 6, "maxSeqlen");
  p.scale = a.f64(first + 9);
  MBERT_CHECK(p.T == 0 || p.stride >= p.NH * p.HS, a.fn(), ": qkvStride ", p.stride, " must be >= NH * HS = ", p.NH * p.HS);
  p.cu = buf<int32_t>(a, first + 1, DType::I32, p.B + 1, "cuSeqlens");
  p.slopes = buf<float>(a, first + 7, DType::F32, p.NH, "slopes", false);
  p.key_bias = buf<float>(a, first + 8, DType::F32, p.T, "keyBias", false);
  check_cu_seqlens(a.fn(), p);
  return p;
}

int64_t qkv_elems(const AttnArgs& p) { return p.T == 0 ? 0 : (p.T - 1) * p.stride + p.NH * p.HS; }

// attentionForward(dtype, out, lse, q, k, v, qkvStride, cuSeqlens, B, T, NH, HS, maxSeqlen, slopes, keyBias, scale)
Napi::Value attention_forward_js(const Napi::CallbackInfo& info) {
  Args a(info, "attentionForward", 16);
  DType dt = a.dtype(0);
  AttnArgs p = attn_args(a, 6);
  DType st = dt == DType::F64 ? DType::F64 : DType::F32;
  int64_t nq = qkv_elems(p), no = p.T * p.NH * p.HS;
  MBERT_CPU_DISPATCH_FLOAT("attentionForward", dt, {
    using A = acc_t<T>;
    attention_forward<T>(p, buf<T>(a, 1, dt, no, "out"), buf<A>(a, 2, st, p.NH * p.T, "lse"),
                         buf<T>(a, 3, dt, nq, "q"), buf<T>(a, 4, dt, nq, "k"), buf<T>(a, 5, dt, nq, "v"));
  });
  return info.Env().Undefined();
}

// attentionBackward(dtype, dq, dk, dv, dout, out, lse, q, k, v, qkvStride, cuSeqlens, B, T, NH, HS, maxSeqlen,
//                   slopes, keyBias, scale)
Napi::Value attention_backward_js(const Napi::CallbackInfo& info) {
  Args a(info, "attentionBackward", 20);
  DType dt = a.dtype(0);
  AttnArgs p = attn_args(a, 10);
  DType st = dt == DType::F64 ? DType::F64 : DType::F32;
  int64_t nq = qkv_elems(p), no = p.T * p.NH * p.HS;
  MBERT_CPU_DISPATCH_FLOAT("attentionBackward", dt, {
    using A = acc_t<T>;
    attention_backward<T>(p, buf<T>(a, 1, dt, nq, "dq"), buf<T>(a, 2, dt, nq, "dk"), buf<T>(a, 3, dt, nq, "dv"),
                          buf<T>(a, 4, dt, no, "dout"), buf<T>(a, 5, dt, no, "out"),
                          buf<A>(a, 6, st, p.NH * p.T, "lse"), buf<T>(a, 7, dt, nq, "q"), buf<T>(a, 8, dt, nq, "k"),
                          buf<T>(a, 9, dt, nq, "v"));
  });
  return info.Env().Undefined();
}

}  // namespace

MBERT_EXPORT(cpu, attentionForward, attention_forward_js);
MBERT_EXPORT(cpu, attentionBackward, attention_backward_js);

}  // namespace cpu
}  // namespace mbert
