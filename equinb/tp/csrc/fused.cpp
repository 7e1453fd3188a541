// The per-sample fully connected tensor product, fused on the CPU: one pass over the edges, every per-path
// intermediate in a small per-thread buffer, nothing materialised across edges.
//
// Written for equinb (equinb/tp/fused.py builds it with torch.utils.cpp_extension and documents the plan it
// reads). Per edge and per path p = (l1, l2, lo), with c the Wigner-3j entries times the path's alpha:
//
//   A_v[k][i]     = sum_j c[i][j][k] x2[v][j]                       (sparse: the plan's non-zero entries)
//   T[k][u,v]     = sum_i A_v[k][i] x1[u][i]                        (x1 transposed once per edge: rows over u)
//   out[w][k]    += sum_(u,v) T[k][u,v] W_p[u,v][w]                 (per output irrep, all its paths, one buffer)
//
// The backward recomputes A and T (cheaper than storing them) and forms, per path,
//   dW_p[u,v][w]  = sum_k T[k][u,v] G[k][w],    dT[k][u,v] = sum_w W_p[u,v][w] G[k][w],
//   dx1[u][i]    += sum_(v,k) A_v[k][i] dT[k][u,v],   dx2[v][j] += sum_(i,k) c[i][j][k] sum_u dT[k][u,v] x1[u][i].
// Innermost loops run over a multiplicity with unit stride and are vectorised (omp simd).
#include <ATen/ATen.h>
#include <immintrin.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace {

// Columns of the per-path table (int64, one row a path, rows grouped by output irrep).
enum Column : int64_t {
  D1, D2, DO, MUL1, MUL2, MULO, X1_OFF, X2_OFF, W_OFF, OUT_OFF, NNZ_BEGIN, NNZ_END, COLUMNS
};

struct Plan {
  const int64_t* path;      // (P, COLUMNS)
  const int64_t* nnz_ijk;   // (N, 3): i, j, k of each non-zero coupling entry
  const double* nnz_value;  // (N,): the entry times the path's alpha
  const int64_t* groups;    // (G + 1,): first path of each output group, then P
  const int64_t* in1;       // (I, 3): offset, multiplicity, dimension of each irrep of the first input
  int64_t n_groups, n_in1, dim1, dim2, dim_out, weight_numel;
  int64_t max_a, max_t, max_acc;  // per-thread buffer sizes
  int64_t uniform;                // H when every path has mul1 = mulo = H and mul2 = 1, else 0

  const int64_t* row(int64_t p) const { return path + p * COLUMNS; }
};

Plan make_plan(const at::Tensor& path, const at::Tensor& nnz_ijk, const at::Tensor& nnz_value,
               const at::Tensor& groups, const at::Tensor& in1, int64_t dim1, int64_t dim2, int64_t dim_out,
               int64_t weight_numel) {
  TORCH_CHECK(path.dtype() == at::kLong && path.is_contiguous() && path.dim() == 2 && path.size(1) == COLUMNS,
              "fused tensor product: malformed path table");
  TORCH_CHECK(nnz_ijk.dtype() == at::kLong && nnz_ijk.is_contiguous(), "fused tensor product: malformed nnz index");
  TORCH_CHECK(nnz_value.dtype() == at::kDouble && nnz_value.is_contiguous(),
              "fused tensor product: coefficients must be float64");
  TORCH_CHECK(groups.dtype() == at::kLong && in1.dtype() == at::kLong && groups.is_contiguous() &&
              in1.is_contiguous(), "fused tensor product: malformed group tables");
  Plan plan{path.data_ptr<int64_t>(), nnz_ijk.data_ptr<int64_t>(), nnz_value.data_ptr<double>(),
            groups.data_ptr<int64_t>(), in1.data_ptr<int64_t>(), groups.numel() - 1, in1.size(0),
            dim1, dim2, dim_out, weight_numel, 1, 1, 1, -1};
  for (int64_t p = 0; p < path.size(0); ++p) {
    const int64_t* r = plan.row(p);
    plan.max_a = std::max(plan.max_a, r[MUL2] * r[DO] * r[D1]);
    plan.max_t = std::max(plan.max_t, r[DO] * r[MUL1] * r[MUL2]);
    plan.max_acc = std::max(plan.max_acc, r[DO] * r[MULO]);
    const bool uniform = r[MUL2] == 1 && r[MUL1] == r[MULO] && (plan.uniform < 0 || plan.uniform == r[MUL1]);
    plan.uniform = uniform ? r[MUL1] : 0;
  }
  plan.uniform = std::max<int64_t>(plan.uniform, 0);
  return plan;
}

// x1 of one edge, each irrep block [u][i] transposed to [i][u] at the same offset.
template <typename S>
void transpose_in1(const Plan& plan, const S* x1, S* x1t) {
  for (int64_t r = 0; r < plan.n_in1; ++r) {
    const int64_t off = plan.in1[3 * r], mul = plan.in1[3 * r + 1], dim = plan.in1[3 * r + 2];
    for (int64_t u = 0; u < mul; ++u)
      for (int64_t i = 0; i < dim; ++i) x1t[off + i * mul + u] = x1[off + u * dim + i];
  }
}

// Multiplicities of a path: compile-time when every path of the plan has mul1 = mulo = H and mul2 = 1 (the
// model's tensor products, H a power of two), so the innermost loops are unrolled into whole vectors and
// accumulators stay in registers; read from the path table otherwise (H = 0).
template <int H>
struct Mul {
  int64_t mul1, mul2, mulo;
  explicit Mul(const int64_t* r)
      : mul1(H ? H : r[MUL1]), mul2(H ? 1 : r[MUL2]), mulo(H ? H : r[MULO]) {}
};

// row[0:mulo] (+)= sum_q factors[q * stride] * rows[q * mulo : (q + 1) * mulo], q < count; with skip_zero,
// terms whose factor is 0 are skipped (the zeros of a sparse coupling). For a compile-time H the row is held in
// vector registers, split into independent partial sums so consecutive multiply-adds do not wait on each other.
template <typename S, int H>
inline void combine_rows(S* row, const S* factors, int64_t stride, const S* rows, int64_t count, int64_t mulo,
                         bool accumulate, bool skip_zero = false) {
  if constexpr (H > 0) {
    typedef S Row __attribute__((vector_size(sizeof(S) * H)));
    constexpr int PARTS = sizeof(Row) >= 256 ? 1 : sizeof(Row) >= 128 ? 2 : 4;
    Row part[PARTS];
    for (int q = 0; q < PARTS; ++q) part[q] = Row{};
    if (accumulate) std::memcpy(&part[0], row, sizeof(Row));
    int64_t q = 0;
    if (!skip_zero) {  // PARTS terms at a time, each into its own partial sum (all indices compile-time)
      for (; q + PARTS <= count; q += PARTS)
        for (int j = 0; j < PARTS; ++j) {
          Row source;
          std::memcpy(&source, rows + (q + j) * H, sizeof(Row));
          part[j] += factors[(q + j) * stride] * source;
        }
    }
    for (; q < count; ++q) {  // the rest, or the few non-zero terms of a sparse coupling
      const S factor = factors[q * stride];
      if (skip_zero && factor == S(0)) continue;
      Row source;
      std::memcpy(&source, rows + q * H, sizeof(Row));
      part[0] += factor * source;
    }
    for (int q = 1; q < PARTS; ++q) part[0] += part[q];
    std::memcpy(row, &part[0], sizeof(Row));
  } else {
    if (!accumulate) std::fill(row, row + mulo, S(0));
    for (int64_t q = 0; q < count; ++q) {
      const S factor = factors[q * stride];
      if (skip_zero && factor == S(0)) continue;
      const S* source = rows + q * mulo;
#pragma omp simd
      for (int64_t o = 0; o < mulo; ++o) row[o] += factor * source[o];
    }
  }
}

// A and T of path `r` for one edge (x2 as given, x1 transposed).
template <typename S, int H>
void couple(const Plan& plan, const int64_t* r, const S* x2, const S* x1t, S* a, S* t) {
  const Mul<H> m(r);
  const int64_t d1 = r[D1], d2 = r[D2], d_o = r[DO], mul12 = m.mul1 * m.mul2;
  std::fill(a, a + m.mul2 * d_o * d1, S(0));
  for (int64_t n = r[NNZ_BEGIN]; n < r[NNZ_END]; ++n) {
    const int64_t i = plan.nnz_ijk[3 * n], j = plan.nnz_ijk[3 * n + 1], k = plan.nnz_ijk[3 * n + 2];
    const S c = static_cast<S>(plan.nnz_value[n]);
    for (int64_t v = 0; v < m.mul2; ++v) a[(v * d_o + k) * d1 + i] += c * x2[r[X2_OFF] + v * d2 + j];
  }
  const S* x1r = x1t + r[X1_OFF];
  if constexpr (H > 0) {
    for (int64_t k = 0; k < d_o; ++k) combine_rows<S, H>(t + k * H, a + k * d1, 1, x1r, d1, H, false, true);
    return;
  }
  std::fill(t, t + d_o * mul12, S(0));
  for (int64_t v = 0; v < m.mul2; ++v)
    for (int64_t k = 0; k < d_o; ++k)
      for (int64_t i = 0; i < d1; ++i) {
        const S coefficient = a[(v * d_o + k) * d1 + i];
        if (coefficient == S(0)) continue;
        const S* column = x1r + i * m.mul1;
        S* trow = t + k * mul12 + v;
        if (m.mul2 == 1) {
#pragma omp simd
          for (int64_t u = 0; u < m.mul1; ++u) trow[u] += coefficient * column[u];
        } else {
          for (int64_t u = 0; u < m.mul1; ++u) trow[u * m.mul2] += coefficient * column[u];
        }
      }
}

template <typename S, int H>
inline S dot(const S* a, const S* b, int64_t n) {
  S sum = 0;
  const int64_t count = H > 0 ? H : n;
#pragma omp simd reduction(+ : sum)
  for (int64_t o = 0; o < count; ++o) sum += a[o] * b[o];
  return sum;
}

#if defined(__AVX512F__)
// One 16 x 16 float tile, rows `stride` apart, transposed (the unpack / 128-bit-lane shuffle network).
inline void transpose_tile(const float* source, float* target, int64_t stride) {
  __m512 r[16], t[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(source + i * stride);
#pragma GCC unroll 8
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // s[4 g + c], 128-bit lane l: rows 4 g .. 4 g + 3 of column 4 l + c
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {
    const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
    r[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    const __m512 x88 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88), xdd = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
    const __m512 v88 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    const __m512 vdd = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
    _mm512_storeu_ps(target + c * stride, _mm512_shuffle_f32x4(x88, v88, 0x88));
    _mm512_storeu_ps(target + (8 + c) * stride, _mm512_shuffle_f32x4(x88, v88, 0xdd));
    _mm512_storeu_ps(target + (4 + c) * stride, _mm512_shuffle_f32x4(xdd, vdd, 0x88));
    _mm512_storeu_ps(target + (12 + c) * stride, _mm512_shuffle_f32x4(xdd, vdd, 0xdd));
  }
}

// One 8 x 8 double tile, rows `stride` apart, transposed.
inline void transpose_tile(const double* source, double* target, int64_t stride) {
  __m512d r[8], t[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) r[i] = _mm512_loadu_pd(source + i * stride);
#pragma GCC unroll 4
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
  }
#pragma GCC unroll 2
  for (int g = 0; g < 2; ++g) {
    r[4 * g] = _mm512_shuffle_f64x2(t[4 * g], t[4 * g + 2], 0x88);
    r[4 * g + 1] = _mm512_shuffle_f64x2(t[4 * g + 1], t[4 * g + 3], 0x88);
    r[4 * g + 2] = _mm512_shuffle_f64x2(t[4 * g], t[4 * g + 2], 0xdd);
    r[4 * g + 3] = _mm512_shuffle_f64x2(t[4 * g + 1], t[4 * g + 3], 0xdd);
  }
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    _mm512_storeu_pd(target + c * stride, _mm512_shuffle_f64x2(r[c], r[4 + c], 0x88));
    _mm512_storeu_pd(target + (4 + c) * stride, _mm512_shuffle_f64x2(r[c], r[4 + c], 0xdd));
  }
}
#endif

// target[o][uv] = source[uv][o] for an H x H block (whole vector tiles with AVX-512, element-wise otherwise).
template <typename S, int H>
inline void transpose_square(const S* source, S* target) {
#if defined(__AVX512F__)
  constexpr int TILE = 64 / sizeof(S);
  if constexpr (H % TILE == 0) {
    for (int bi = 0; bi < H; bi += TILE)
      for (int bj = 0; bj < H; bj += TILE) transpose_tile(source + bi * H + bj, target + bj * H + bi, H);
    return;
  }
#endif
  for (int64_t o = 0; o < H; ++o)
    for (int64_t uv = 0; uv < H; ++uv) target[o * H + uv] = source[uv * H + o];
}

// Asks for `count` elements from `start` to be brought into the caches (write: about to be overwritten). The
// per-edge weights are streamed from memory in blocks of a few kilobytes, each starting on a new page, where the
// hardware prefetchers stop; fetching the next edge's block while this one is computed hides that latency.
template <typename S>
inline void prefetch(const S* start, int64_t count, bool write = false) {
  const char* bytes = reinterpret_cast<const char*>(start);
  for (int64_t offset = 0; offset < count * static_cast<int64_t>(sizeof(S)); offset += 64) {
    if (write) __builtin_prefetch(bytes + offset, 1, 3);
    else __builtin_prefetch(bytes + offset, 0, 3);
  }
}

// H ones, to sum lanes with dot().
template <typename S, int H>
const S* ones() {
  static const std::vector<S> values(std::max(H, 1), S(1));
  return values.data();
}

template <typename S, int H>
void forward_edges(const Plan& plan, const S* x1, const S* x2, const S* w, S* out, int64_t begin, int64_t end) {
  std::vector<S> x1t(plan.dim1), a(plan.max_a), t(plan.max_t), acc(plan.max_acc);
  for (int64_t e = begin; e < end; ++e) {
    const S* x1e = x1 + e * plan.dim1;
    const S* x2e = x2 + e * plan.dim2;
    const S* we = w + e * plan.weight_numel;
    S* oute = out + e * plan.dim_out;
    transpose_in1(plan, x1e, x1t.data());
    for (int64_t g = 0; g < plan.n_groups; ++g) {
      const int64_t* first = plan.row(plan.groups[g]);
      const int64_t d_o = first[DO], mulo = Mul<H>(first).mulo;
      for (int64_t p = plan.groups[g]; p < plan.groups[g + 1]; ++p) {
        const int64_t* r = plan.row(p);
        const Mul<H> m(r);
        const int64_t mul12 = m.mul1 * m.mul2;
        if (e + 1 < end) prefetch(we + plan.weight_numel + r[W_OFF], mul12 * mulo);
        couple<S, H>(plan, r, x2e, x1t.data(), a.data(), t.data());
        for (int64_t k = 0; k < d_o; ++k)
          combine_rows<S, H>(acc.data() + k * mulo, t.data() + k * mul12, 1, we + r[W_OFF], mul12, mulo,
                             p != plan.groups[g]);
      }
      S* block = oute + first[OUT_OFF];
      for (int64_t o = 0; o < mulo; ++o)
        for (int64_t k = 0; k < d_o; ++k) block[o * d_o + k] = acc[k * mulo + o];
    }
  }
}

template <typename S, int H>
void backward_edges(const Plan& plan, const S* grad_out, const S* x1, const S* x2, const S* w, S* gx1, S* gx2,
                    S* gw, int64_t begin, int64_t end) {
  std::vector<S> x1t(plan.dim1), gx1t(plan.dim1), a(plan.max_a), t(plan.max_t), gt(plan.max_t),
      g(plan.max_acc), wt(H * H), x2_lanes(H * plan.dim2);
  const bool inputs = gx1 != nullptr || gx2 != nullptr;
  for (int64_t e = begin; e < end; ++e) {
    const S* x1e = x1 + e * plan.dim1;
    const S* x2e = x2 + e * plan.dim2;
    const S* we = w + e * plan.weight_numel;
    const S* goute = grad_out + e * plan.dim_out;
    S* gx2e = gx2 != nullptr ? gx2 + e * plan.dim2 : nullptr;
    S* gwe = gw != nullptr ? gw + e * plan.weight_numel : nullptr;
    transpose_in1(plan, x1e, x1t.data());
    std::fill(gx1t.begin(), gx1t.end(), S(0));
    if (gx2e != nullptr) std::fill(gx2e, gx2e + plan.dim2, S(0));
    std::fill(x2_lanes.begin(), x2_lanes.end(), S(0));
    for (int64_t gi = 0; gi < plan.n_groups; ++gi) {
      const int64_t* first = plan.row(plan.groups[gi]);
      const int64_t d_o = first[DO], mulo = Mul<H>(first).mulo;
      const S* block = goute + first[OUT_OFF];
      for (int64_t o = 0; o < mulo; ++o)
        for (int64_t k = 0; k < d_o; ++k) g[k * mulo + o] = block[o * d_o + k];
      for (int64_t p = plan.groups[gi]; p < plan.groups[gi + 1]; ++p) {
        const int64_t* r = plan.row(p);
        const Mul<H> m(r);
        const int64_t d1 = r[D1], d2 = r[D2], mul1 = m.mul1, mul2 = m.mul2, mul12 = mul1 * mul2;
        if (e + 1 < end) {
          prefetch(we + plan.weight_numel + r[W_OFF], mul12 * mulo);
          if (gwe != nullptr) prefetch(gwe + plan.weight_numel + r[W_OFF], mul12 * mulo, true);
        }
        couple<S, H>(plan, r, x2e, x1t.data(), a.data(), t.data());
        const S* wp = we + r[W_OFF];
        if (gwe != nullptr) {
          S* gwp = gwe + r[W_OFF];
          for (int64_t uv = 0; uv < mul12; ++uv)
            combine_rows<S, H>(gwp + uv * mulo, t.data() + uv, mul12, g.data(), d_o, mulo, false);
        }
        if (!inputs) continue;
        if constexpr (H > 0) {  // dT = G W^T as rows over uv: W's block transposed, no horizontal sums
          transpose_square<S, H>(wp, wt.data());
          for (int64_t k = 0; k < d_o; ++k)
            combine_rows<S, H>(gt.data() + k * H, g.data() + k * H, 1, wt.data(), H, H, false);
        } else {
          for (int64_t uv = 0; uv < mul12; ++uv)
            for (int64_t k = 0; k < d_o; ++k)
              gt[k * mul12 + uv] = dot<S, H>(wp + uv * mulo, g.data() + k * mulo, mulo);
        }
        if (gx1 != nullptr && H > 0) {
          S* gx1r = gx1t.data() + r[X1_OFF];
          for (int64_t i = 0; i < d1; ++i)
            combine_rows<S, H>(gx1r + i * H, a.data() + i, d1, gt.data(), d_o, H, true, true);
        } else if (gx1 != nullptr) {
          S* gx1r = gx1t.data() + r[X1_OFF];
          for (int64_t v = 0; v < mul2; ++v)
            for (int64_t k = 0; k < d_o; ++k)
              for (int64_t i = 0; i < d1; ++i) {
                const S coefficient = a[(v * d_o + k) * d1 + i];
                if (coefficient == S(0)) continue;
                S* column = gx1r + i * mul1;
                const S* gtrow = gt.data() + k * mul12 + v;
                if (mul2 == 1) {
#pragma omp simd
                  for (int64_t u = 0; u < mul1; ++u) column[u] += coefficient * gtrow[u];
                } else {
                  for (int64_t u = 0; u < mul1; ++u) column[u] += coefficient * gtrow[u * mul2];
                }
              }
        }
        if (gx2e != nullptr) {
          const S* x1r = x1t.data() + r[X1_OFF];
          for (int64_t n = r[NNZ_BEGIN]; n < r[NNZ_END]; ++n) {
            const int64_t i = plan.nnz_ijk[3 * n], j = plan.nnz_ijk[3 * n + 1], k = plan.nnz_ijk[3 * n + 2];
            const S c = static_cast<S>(plan.nnz_value[n]);
            const S* column = x1r + i * mul1;
            if constexpr (H > 0) {  // lanes over u kept per entry of x2, summed once per edge
              S* lanes = x2_lanes.data() + (r[X2_OFF] + j) * H;
              const S* gtrow = gt.data() + k * H;
#pragma omp simd
              for (int64_t u = 0; u < H; ++u) lanes[u] += c * gtrow[u] * column[u];
            } else {
              for (int64_t v = 0; v < mul2; ++v) {
                const S* gtrow = gt.data() + k * mul12 + v;
                S sum = 0;
                for (int64_t u = 0; u < mul1; ++u) sum += gtrow[u * mul2] * column[u];
                gx2e[r[X2_OFF] + v * d2 + j] += c * sum;
              }
            }
          }
        }
      }
    }
    if (H > 0 && gx2e != nullptr)
      for (int64_t j = 0; j < plan.dim2; ++j) gx2e[j] = dot<S, H>(x2_lanes.data() + j * H, ones<S, H>(), H);
    if (gx1 != nullptr) {
      S* gx1e = gx1 + e * plan.dim1;
      for (int64_t rr = 0; rr < plan.n_in1; ++rr) {
        const int64_t off = plan.in1[3 * rr], mul = plan.in1[3 * rr + 1], dim = plan.in1[3 * rr + 2];
        for (int64_t u = 0; u < mul; ++u)
          for (int64_t i = 0; i < dim; ++i) gx1e[off + u * dim + i] = gx1t[off + i * mul + u];
      }
    }
  }
}

// Calls body.template operator()<H>() with the plan's uniform multiplicity when it is one the kernel unrolls.
template <typename Body>
void with_multiplicity(const Plan& plan, const Body& body) {
  switch (plan.uniform) {
    case 8: body(std::integral_constant<int, 8>{}); break;
    case 16: body(std::integral_constant<int, 16>{}); break;
    case 32: body(std::integral_constant<int, 32>{}); break;
    case 64: body(std::integral_constant<int, 64>{}); break;
    default: body(std::integral_constant<int, 0>{});
  }
}

void check_rows(const at::Tensor& tensor, const char* name, int64_t edges, int64_t size, at::ScalarType dtype) {
  TORCH_CHECK(tensor.device().is_cpu(), "fused tensor product: ", name, " must be on the CPU");
  TORCH_CHECK(tensor.scalar_type() == dtype, "fused tensor product: ", name, " must be ", dtype);
  TORCH_CHECK(tensor.dim() == 2 && tensor.size(0) == edges && tensor.size(1) == size && tensor.is_contiguous(),
              "fused tensor product: ", name, " must be a contiguous (", edges, ", ", size, ") matrix");
}

constexpr int64_t GRAIN = 8;  // edges per task of at::parallel_for

at::Tensor fused_forward(const at::Tensor& x1, const at::Tensor& x2, const at::Tensor& weight,
                         const at::Tensor& path, const at::Tensor& nnz_ijk, const at::Tensor& nnz_value,
                         const at::Tensor& groups, const at::Tensor& in1, int64_t dim_out) {
  const int64_t edges = x1.size(0);
  const auto dtype = x1.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "fused tensor product: float32 or float64 only");
  check_rows(x1, "x1", edges, x1.size(1), dtype);
  check_rows(x2, "x2", edges, x2.size(1), dtype);
  check_rows(weight, "weight", edges, weight.size(1), dtype);
  const Plan plan = make_plan(path, nnz_ijk, nnz_value, groups, in1, x1.size(1), x2.size(1), dim_out,
                              weight.size(1));
  at::Tensor out = at::zeros({edges, dim_out}, x1.options());
  AT_DISPATCH_FLOATING_TYPES(dtype, "fused_forward", [&] {
    const scalar_t *px1 = x1.data_ptr<scalar_t>(), *px2 = x2.data_ptr<scalar_t>(),
                   *pw = weight.data_ptr<scalar_t>();
    scalar_t* pout = out.data_ptr<scalar_t>();
    with_multiplicity(plan, [&](auto h) {
      at::parallel_for(0, edges, GRAIN, [&](int64_t begin, int64_t end) {
        forward_edges<scalar_t, decltype(h)::value>(plan, px1, px2, pw, pout, begin, end);
      });
    });
  });
  return out;
}

// Writes the requested gradients into grad_x1, grad_x2, grad_weight (an empty tensor: not requested); every
// requested entry is overwritten, so the buffers may hold anything on entry.
void fused_backward(const at::Tensor& grad_out, const at::Tensor& x1, const at::Tensor& x2,
                    const at::Tensor& weight, const at::Tensor& path, const at::Tensor& nnz_ijk,
                    const at::Tensor& nnz_value, const at::Tensor& groups, const at::Tensor& in1,
                    at::Tensor grad_x1, at::Tensor grad_x2, at::Tensor grad_weight) {
  const int64_t edges = x1.size(0);
  const auto dtype = x1.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "fused tensor product: float32 or float64 only");
  check_rows(grad_out, "grad_out", edges, grad_out.size(1), dtype);
  check_rows(x1, "x1", edges, x1.size(1), dtype);
  check_rows(x2, "x2", edges, x2.size(1), dtype);
  check_rows(weight, "weight", edges, weight.size(1), dtype);
  const Plan plan = make_plan(path, nnz_ijk, nnz_value, groups, in1, x1.size(1), x2.size(1), grad_out.size(1),
                              weight.size(1));
  const bool want_x1 = grad_x1.numel() > 0, want_x2 = grad_x2.numel() > 0, want_w = grad_weight.numel() > 0;
  if (want_x1) check_rows(grad_x1, "grad_x1", edges, x1.size(1), dtype);
  if (want_x2) check_rows(grad_x2, "grad_x2", edges, x2.size(1), dtype);
  if (want_w) check_rows(grad_weight, "grad_weight", edges, weight.size(1), dtype);
  AT_DISPATCH_FLOATING_TYPES(dtype, "fused_backward", [&] {
    const scalar_t *pg = grad_out.data_ptr<scalar_t>(), *px1 = x1.data_ptr<scalar_t>(),
                   *px2 = x2.data_ptr<scalar_t>(), *pw = weight.data_ptr<scalar_t>();
    scalar_t* pgx1 = want_x1 ? grad_x1.data_ptr<scalar_t>() : nullptr;
    scalar_t* pgx2 = want_x2 ? grad_x2.data_ptr<scalar_t>() : nullptr;
    scalar_t* pgw = want_w ? grad_weight.data_ptr<scalar_t>() : nullptr;
    with_multiplicity(plan, [&](auto h) {
      at::parallel_for(0, edges, GRAIN, [&](int64_t begin, int64_t end) {
        backward_edges<scalar_t, decltype(h)::value>(plan, pg, px1, px2, pw, pgx1, pgx2, pgw, begin, end);
      });
    });
  });
}

}  // namespace

TORCH_LIBRARY(equinb_tp, m) {
  m.def("fused_forward(Tensor x1, Tensor x2, Tensor weight, Tensor path, Tensor nnz_ijk, Tensor nnz_value, "
        "Tensor groups, Tensor in1, int dim_out) -> Tensor");
  m.def("fused_backward(Tensor grad_out, Tensor x1, Tensor x2, Tensor weight, Tensor path, Tensor nnz_ijk, "
        "Tensor nnz_value, Tensor groups, Tensor in1, Tensor(a!) grad_x1, Tensor(b!) grad_x2, "
        "Tensor(c!) grad_weight) -> ()");
}

TORCH_LIBRARY_IMPL(equinb_tp, CPU, m) {
  m.impl("fused_forward", &fused_forward);
  m.impl("fused_backward", &fused_backward);
}
