// frkit GPU kernels: the per-level work of the optical-flow method for a whole
// batch of frames per launch.
//
// Every kernel is elementwise over a flat index (FR_LOOP): no shared memory,
// no synchronisation inside a kernel. The same text is compiled by NVRTC for
// the GPU (CuPy) and, for the tests, by the host C++ compiler with a prelude
// that turns FR_LOOP into a plain loop, so every kernel runs on the CPU too.
//
// Layouts (C order, float32):
//   planes    (P, R, C)            P = frames * channels
//   images    (B, K, R, C)         batch, channel, rows, cols
//   flows     (B, R, C)            one plane per component (u, v separate)
//   padded    (B, R + 2, C + 2)    solver arrays with a one-pixel ghost ring
//   tensor    (B, K, 6, R + 2, C + 2)  J11 J22 J33 J12 J13 J23, zero ring

#define EPS_PSI 1e-5f
#define KEYS_A (-0.75f)

FR_DEVICE float fr_keys(float t) {
    t = fabsf(t);
    if (t < 1.0f) return ((KEYS_A + 2.0f) * t - (KEYS_A + 3.0f)) * t * t + 1.0f;
    if (t < 2.0f) return ((KEYS_A * t - 5.0f * KEYS_A) * t + 8.0f * KEYS_A) * t - 4.0f * KEYS_A;
    return 0.0f;
}

FR_DEVICE int fr_clamp(int i, int n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

// ---------------------------------------------------------------------------
// separable resize with tap tables (rows pass, then columns pass)

extern "C" FR_GLOBAL void resize_rows(const float* src, float* dst, int P, int H, int W, int M,
                                      const int* idx, const float* wts, int taps) {
    long long n = (long long)P * M * W;
    FR_LOOP(t, n) {
        int x = (int)(t % W);
        long long r = t / W;
        int i = (int)(r % M);
        long long p = r / M;
        const float* s = src + p * (long long)H * W + x;
        float acc = 0.0f;
        for (int k = 0; k < taps; ++k) acc += wts[i * taps + k] * s[(long long)idx[i * taps + k] * W];
        dst[t] = acc;
    }
}

extern "C" FR_GLOBAL void resize_cols(const float* src, float* dst, int P, int M, int W, int N,
                                      const int* idx, const float* wts, int taps) {
    long long n = (long long)P * M * N;
    FR_LOOP(t, n) {
        int j = (int)(t % N);
        long long row = t / N;
        const float* s = src + row * W;
        float acc = 0.0f;
        for (int k = 0; k < taps; ++k) acc += wts[j * taps + k] * s[idx[j * taps + k]];
        dst[t] = acc;
    }
}

// ---------------------------------------------------------------------------
// preprocessing: (x - lo) * scale, Gaussian along rows / columns with
// half-sample symmetric borders; taps (K, 2*radius+1), one row per channel

FR_DEVICE int fr_reflect(int i, int n) {
    while (i < 0 || i >= n) i = i < 0 ? -i - 1 : 2 * n - 1 - i;
    return i;
}

extern "C" FR_GLOBAL void gauss_rows(const float* src, float* dst, int B, int K, int H, int W,
                                     const float* taps, int radius, const float* lo, const float* scale) {
    long long n = (long long)B * K * H * W;
    int width = 2 * radius + 1;
    FR_LOOP(t, n) {
        int x = (int)(t % W);
        long long r = t / W;
        int y = (int)(r % H);
        long long p = r / H;
        int k = (int)(p % K);
        const float* s = src + p * (long long)H * W + x;
        float acc = 0.0f;
        for (int d = -radius; d <= radius; ++d) {
            float w = taps[k * width + d + radius];
            if (w != 0.0f) acc += w * ((s[(long long)fr_reflect(y + d, H) * W] - lo[k]) * scale[k]);
        }
        dst[t] = acc;
    }
}

extern "C" FR_GLOBAL void gauss_cols(const float* src, float* dst, int B, int K, int H, int W,
                                     const float* taps, int radius) {
    long long n = (long long)B * K * H * W;
    int width = 2 * radius + 1;
    FR_LOOP(t, n) {
        int x = (int)(t % W);
        long long r = t / W;
        int k = (int)((r / H) % K);
        const float* s = src + r * W;
        float acc = 0.0f;
        for (int d = -radius; d <= radius; ++d) {
            float w = taps[k * width + d + radius];
            if (w != 0.0f) acc += w * s[fr_reflect(x + d, W)];
        }
        dst[t] = acc;
    }
}

// ---------------------------------------------------------------------------
// backward warp of a pyramid level: out = f2(y + v*sy, x + u*sx), fill f1 (one
// reference for the batch) where the sample falls outside the frame

extern "C" FR_GLOBAL void warp_level(const float* f2, const float* U, const float* V, const float* f1,
                                     float* out, int B, int K, int R, int C, float sx, float sy, int cubic) {
    long long n = (long long)B * R * C;
    long long plane = (long long)R * C;
    FR_LOOP(t, n) {
        int x = (int)(t % C);
        int y = (int)((t / C) % R);
        long long b = t / plane;
        float mx = x + U[t] * sx;
        float my = y + V[t] * sy;
        const float* fill = f1;
        if (mx < 0.0f || mx >= (float)C || my < 0.0f || my >= (float)R) {
            for (int k = 0; k < K; ++k) out[(b * K + k) * plane + (long long)y * C + x] = fill[k * plane + (long long)y * C + x];
            continue;
        }
        if (mx > C - 1) mx = (float)(C - 1);
        if (my > R - 1) my = (float)(R - 1);
        int x0 = (int)mx, y0 = (int)my;
        float tx = mx - x0, ty = my - y0;
        if (!cubic) {
            int x1 = fr_clamp(x0 + 1, C), y1 = fr_clamp(y0 + 1, R);
            for (int k = 0; k < K; ++k) {
                const float* s = f2 + (b * K + k) * plane;
                float top = (1.0f - tx) * s[(long long)y0 * C + x0] + tx * s[(long long)y0 * C + x1];
                float bot = (1.0f - tx) * s[(long long)y1 * C + x0] + tx * s[(long long)y1 * C + x1];
                out[(b * K + k) * plane + (long long)y * C + x] = (1.0f - ty) * top + ty * bot;
            }
            continue;
        }
        float wx[4] = {fr_keys(tx + 1.0f), fr_keys(tx), fr_keys(1.0f - tx), fr_keys(2.0f - tx)};
        float wy[4] = {fr_keys(ty + 1.0f), fr_keys(ty), fr_keys(1.0f - ty), fr_keys(2.0f - ty)};
        int xs[4] = {fr_clamp(x0 - 1, C), x0, fr_clamp(x0 + 1, C), fr_clamp(x0 + 2, C)};
        int ys[4] = {fr_clamp(y0 - 1, R), y0, fr_clamp(y0 + 1, R), fr_clamp(y0 + 2, R)};
        for (int k = 0; k < K; ++k) {
            const float* s = f2 + (b * K + k) * plane;
            float acc = 0.0f;
            for (int a = 0; a < 4; ++a) {
                float row = 0.0f;
                for (int c = 0; c < 4; ++c) row += wx[c] * s[(long long)ys[a] * C + xs[c]];
                acc += wy[a] * row;
            }
            out[(b * K + k) * plane + (long long)y * C + x] = acc;
        }
    }
}

// ---------------------------------------------------------------------------
// gradient-constancy motion tensor; f1 is one reference (K, R, C), f2w the
// warped batch (B, K, R, C); J (B, K, 6, R+2, C+2) must be zero on the ring

FR_DEVICE float fr_ld(const float* a, int y, int x, int R, int C) {
    return a[(long long)fr_clamp(y, R) * C + fr_clamp(x, C)];
}

FR_DEVICE float fr_fx(const float* f1, const float* f2, int y, int x, int R, int C, float inv2hc) {
    y = fr_clamp(y, R);
    x = fr_clamp(x, C);
    return 0.5f * ((fr_ld(f1, y, x + 1, R, C) - fr_ld(f1, y, x - 1, R, C))
                   + (fr_ld(f2, y, x + 1, R, C) - fr_ld(f2, y, x - 1, R, C))) * inv2hc;
}

FR_DEVICE float fr_ft(const float* f1, const float* f2, int y, int x, int R, int C) {
    return fr_ld(f2, y, x, R, C) - fr_ld(f1, y, x, R, C);
}

extern "C" FR_GLOBAL void tensor_gc(const float* f1, const float* f2w, float* J, int B, int K, int R, int C,
                                    float h_row, float h_col) {
    long long n = (long long)B * K * R * C;
    long long plane = (long long)R * C;
    long long pplane = (long long)(R + 2) * (C + 2);
    float inv2hc = 1.0f / (2.0f * h_col), inv2hr = 1.0f / (2.0f * h_row);
    float ihc2 = 1.0f / (h_col * h_col), ihr2 = 1.0f / (h_row * h_row);
    FR_LOOP(t, n) {
        int x = (int)(t % C);
        int y = (int)((t / C) % R);
        long long bk = t / plane;
        int k = (int)(bk % K);
        const float* a = f1 + k * plane;
        const float* b = f2w + bk * plane;
        float fxy = (fr_fx(a, b, y + 1, x, R, C, inv2hc) - fr_fx(a, b, y - 1, x, R, C, inv2hc)) * inv2hr;
        float fxt = (fr_ft(a, b, y, fr_clamp(x + 1, C), R, C) - fr_ft(a, b, y, fr_clamp(x - 1, C), R, C)) * inv2hc;
        float fyt = (fr_ft(a, b, fr_clamp(y + 1, R), x, R, C) - fr_ft(a, b, fr_clamp(y - 1, R), x, R, C)) * inv2hr;
        float fxx = 0.5f * ((fr_ld(a, y, x - 1, R, C) - 2.0f * a[(long long)y * C + x] + fr_ld(a, y, x + 1, R, C))
                            + (fr_ld(b, y, x - 1, R, C) - 2.0f * b[(long long)y * C + x] + fr_ld(b, y, x + 1, R, C))) * ihc2;
        float fyy = 0.5f * ((fr_ld(a, y - 1, x, R, C) - 2.0f * a[(long long)y * C + x] + fr_ld(a, y + 1, x, R, C))
                            + (fr_ld(b, y - 1, x, R, C) - 2.0f * b[(long long)y * C + x] + fr_ld(b, y + 1, x, R, C))) * ihr2;
        float rx = 1.0f / (fxx * fxx + fxy * fxy + 1e-6f);
        float ry = 1.0f / (fxy * fxy + fyy * fyy + 1e-6f);
        float* o = J + bk * 6 * pplane + (long long)(y + 1) * (C + 2) + (x + 1);
        o[0 * pplane] = rx * fxx * fxx + ry * fxy * fxy;
        o[1 * pplane] = rx * fxy * fxy + ry * fyy * fyy;
        o[2 * pplane] = rx * fxt * fxt + ry * fyt * fyt;
        o[3 * pplane] = rx * fxx * fxy + ry * fxy * fyy;
        o[4 * pplane] = rx * fxx * fxt + ry * fxy * fyt;
        o[5 * pplane] = rx * fxy * fxt + ry * fyy * fyt;
    }
}

// ---------------------------------------------------------------------------
// level solver: red-black SOR with the lagged nonlinearities of the CPU path

// (B, R, C) -> (B, R+2, C+2) with the ring replicating the nearest pixel
extern "C" FR_GLOBAL void pad_replicate(const float* src, float* dst, int B, int R, int C) {
    long long n = (long long)B * (R + 2) * (C + 2);
    FR_LOOP(t, n) {
        int x = (int)(t % (C + 2));
        int y = (int)((t / (C + 2)) % (R + 2));
        long long b = t / ((long long)(R + 2) * (C + 2));
        dst[t] = src[b * (long long)R * C + (long long)fr_clamp(y - 1, R) * C + fr_clamp(x - 1, C)];
    }
}

// smoothness weights psi_s on the whole padded array (a_s != 1): gradient of
// the total flow, central inside, one-sided at the array edge
extern "C" FR_GLOBAL void smooth_psi(const float* Up, const float* Vp, const float* dU, const float* dV,
                                     float* psi, int B, int R2, int C2, float hx, float hy, float a_s,
                                     int quadratic) {
    long long n = (long long)B * R2 * C2;
    FR_LOOP(t, n) {
        if (quadratic) { psi[t] = 1.0f; continue; }
        int x = (int)(t % C2);
        int y = (int)((t / C2) % R2);
        long long base = t - (long long)y * C2 - x;
        int xl = x > 0 ? x - 1 : 0, xr = x < C2 - 1 ? x + 1 : C2 - 1;
        int yl = y > 0 ? y - 1 : 0, yr = y < R2 - 1 ? y + 1 : R2 - 1;
        float sx = 1.0f / ((xr - xl) * hx), sy = 1.0f / ((yr - yl) * hy);
        long long pl = base + (long long)y * C2 + xl, pr = base + (long long)y * C2 + xr;
        long long pu = base + (long long)yl * C2 + x, pd = base + (long long)yr * C2 + x;
        float ux = ((Up[pr] + dU[pr]) - (Up[pl] + dU[pl])) * sx;
        float vx = ((Vp[pr] + dV[pr]) - (Vp[pl] + dV[pl])) * sx;
        float uy = ((Up[pd] + dU[pd]) - (Up[pu] + dU[pu])) * sy;
        float vy = ((Vp[pd] + dV[pd]) - (Vp[pu] + dV[pu])) * sy;
        float z = ux * ux + uy * uy + vx * vx + vy * vy;
        psi[t] = a_s * powf(fmaxf(z, 0.0f) + EPS_PSI, a_s - 1.0f);
    }
}

// smoothness weights of the four edges of pixel p (left, right, up, down)
FR_DEVICE void fr_edges(const float* psi_s, long long p, int C2, float ax, float ay, int smooth_quadratic,
                        float* el, float* er, float* eu, float* ed) {
    if (smooth_quadratic) {
        *el = *er = ax;
        *eu = *ed = ay;
        return;
    }
    float c = psi_s[p];
    *el = 0.5f * (c + psi_s[p - 1]) * ax;
    *er = 0.5f * (c + psi_s[p + 1]) * ax;
    *eu = 0.5f * (c + psi_s[p - C2]) * ay;
    *ed = 0.5f * (c + psi_s[p + C2]) * ay;
}

// per interior pixel: data weights and the constants of the sweep
//   IU = omega / (S + sum psi J11), GU = sum_q a_q (U_q - U_p) - sum psi J13, A12 = sum psi J12
extern "C" FR_GLOBAL void rb_refresh(const float* J, const float* wk, const float* a_data, const float* Up,
                                     const float* Vp, const float* dU, const float* dV, const float* psi_s,
                                     float* IU, float* IV, float* GU, float* GV, float* A12,
                                     int B, int K, int R, int C, float ax, float ay, float omega,
                                     int quadratic, int smooth_quadratic) {
    long long n = (long long)B * R * C;
    int C2 = C + 2;
    long long pplane = (long long)(R + 2) * C2;
    FR_LOOP(t, n) {
        int x = (int)(t % C) + 1;
        int y = (int)((t / C) % R) + 1;
        long long b = t / ((long long)R * C);
        long long p = b * pplane + (long long)y * C2 + x;
        float du = dU[p], dv = dV[p];
        float d11 = 0.0f, d22 = 0.0f, a12 = 0.0f, b1 = 0.0f, b2 = 0.0f;
        for (int k = 0; k < K; ++k) {
            const float* Jk = J + (b * K + k) * 6 * pplane + (long long)y * C2 + x;
            float j11 = Jk[0], j22 = Jk[pplane], j33 = Jk[2 * pplane];
            float j12 = Jk[3 * pplane], j13 = Jk[4 * pplane], j23 = Jk[5 * pplane];
            float psi;
            if (quadratic) {
                psi = wk[k];
            } else {
                float e = j11 * du * du + j22 * dv * dv + j33 + 2.0f * (j12 * du * dv + j13 * du + j23 * dv);
                psi = wk[k] * a_data[k] * powf(fmaxf(e, 0.0f) + EPS_PSI, a_data[k] - 1.0f);
            }
            d11 += psi * j11;
            d22 += psi * j22;
            a12 += psi * j12;
            b1 += psi * j13;
            b2 += psi * j23;
        }
        float el, er, eu, ed;
        fr_edges(psi_s, p, C2, ax, ay, smooth_quadratic, &el, &er, &eu, &ed);
        float up = Up[p], vp = Vp[p];
        float ru = el * (Up[p - 1] - up) + er * (Up[p + 1] - up) + eu * (Up[p - C2] - up) + ed * (Up[p + C2] - up);
        float rv = el * (Vp[p - 1] - vp) + er * (Vp[p + 1] - vp) + eu * (Vp[p - C2] - vp) + ed * (Vp[p + C2] - vp);
        float s = el + er + eu + ed;
        IU[p] = omega / (s + d11);
        IV[p] = omega / (s + d22);
        GU[p] = ru - b1;
        GV[p] = rv - b2;
        A12[p] = a12;
    }
}

// one colour of one red-black SOR iteration; colour = (row + col) % 2 in
// padded coordinates. u then v inside a pixel (v sees the new u). A pixel next
// to the ring also writes its ghosts, so they always hold the Neumann copy of
// the latest interior value.
extern "C" FR_GLOBAL void rb_sweep(float* dU, float* dV, const float* IU, const float* IV, const float* GU,
                                   const float* GV, const float* A12, const float* psi_s, int B, int R, int C,
                                   float ax, float ay, float one_m_omega, int colour, int smooth_quadratic) {
    int half = (C + 1) / 2;
    long long n = (long long)B * R * half;
    int C2 = C + 2;
    long long pplane = (long long)(R + 2) * C2;
    FR_LOOP(t, n) {
        int h = (int)(t % half);
        int y = (int)((t / half) % R) + 1;
        long long b = t / ((long long)R * half);
        int x = 1 + ((colour - (y + 1)) & 1) + 2 * h;
        if (x > C) continue;
        long long p = b * pplane + (long long)y * C2 + x;
        float el, er, eu, ed;
        fr_edges(psi_s, p, C2, ax, ay, smooth_quadratic, &el, &er, &eu, &ed);
        float su = el * dU[p - 1] + er * dU[p + 1] + eu * dU[p - C2] + ed * dU[p + C2];
        float u = one_m_omega * dU[p] + IU[p] * (su + GU[p] - A12[p] * dV[p]);
        float sv = el * dV[p - 1] + er * dV[p + 1] + eu * dV[p - C2] + ed * dV[p + C2];
        float v = one_m_omega * dV[p] + IV[p] * (sv + GV[p] - A12[p] * u);
        dU[p] = u;
        dV[p] = v;
        if (y == 1) { dU[p - C2] = u; dV[p - C2] = v; }
        if (y == R) { dU[p + C2] = u; dV[p + C2] = v; }
        if (x == 1) { dU[p - 1] = u; dV[p - 1] = v; }
        if (x == C) { dU[p + 1] = u; dV[p + 1] = v; }
        // corners take the diagonal interior value, as the CPU's Neumann copy
        // does; only the smoothness-weight gradient (a_smooth != 1) reads them
        int dy = y == 1 ? -C2 : (y == R ? C2 : 0);
        int dx = x == 1 ? -1 : (x == C ? 1 : 0);
        if (dy != 0 && dx != 0) { dU[p + dy + dx] = u; dV[p + dy + dx] = v; }
    }
}

// U += median5x5(dU interior) (mirror border), or U += dU when use_median is 0
extern "C" FR_GLOBAL void median_add(const float* dU, float* U, int B, int R, int C, int use_median) {
    long long n = (long long)B * R * C;
    int C2 = C + 2;
    long long pplane = (long long)(R + 2) * C2;
    FR_LOOP(t, n) {
        int x = (int)(t % C);
        int y = (int)((t / C) % R);
        long long b = t / ((long long)R * C);
        const float* d = dU + b * pplane;
        if (!use_median) {
            U[t] += d[(long long)(y + 1) * C2 + x + 1];
            continue;
        }
        float v[25];
        for (int dy = 0; dy < 5; ++dy) {
            int yy = y + dy - 2;
            yy = yy < 0 ? -yy : (yy > R - 1 ? 2 * (R - 1) - yy : yy);
            for (int dx = 0; dx < 5; ++dx) {
                int xx = x + dx - 2;
                xx = xx < 0 ? -xx : (xx > C - 1 ? 2 * (C - 1) - xx : xx);
                v[dy * 5 + dx] = d[(long long)(yy + 1) * C2 + xx + 1];
            }
        }
        FR_MEDIAN25_NETWORK
        U[t] += v[12];
    }
}

// ---------------------------------------------------------------------------
// output: warp raw frames (B, H, W, Ch) channel-last by flows (B, H, W) u, v;
// the fill (H, W, Ch) is shared; result float (rounding happens afterwards)

extern "C" FR_GLOBAL void warp_output(const float* src, const float* U, const float* V, const float* fill,
                                      float* out, int B, int H, int W, int Ch, int cubic) {
    long long n = (long long)B * H * W;
    long long plane = (long long)H * W;
    FR_LOOP(t, n) {
        int x = (int)(t % W);
        int y = (int)((t / W) % H);
        long long b = t / plane;
        long long pix = (long long)y * W + x;
        // the in-bounds test in double: the same rule as the stored valid mask
        double mxd = x + (double)U[t], myd = y + (double)V[t];
        float* o = out + t * Ch;
        if (mxd < 0.0 || mxd >= (double)W || myd < 0.0 || myd >= (double)H) {
            for (int k = 0; k < Ch; ++k) o[k] = fill[pix * Ch + k];
            continue;
        }
        float mx = mxd > W - 1 ? (float)(W - 1) : (float)mxd;
        float my = myd > H - 1 ? (float)(H - 1) : (float)myd;
        int x0 = (int)mx, y0 = (int)my;
        float tx = mx - x0, ty = my - y0;
        const float* s = src + b * plane * Ch;
        if (cubic) {
            float wx[4] = {fr_keys(tx + 1.0f), fr_keys(tx), fr_keys(1.0f - tx), fr_keys(2.0f - tx)};
            float wy[4] = {fr_keys(ty + 1.0f), fr_keys(ty), fr_keys(1.0f - ty), fr_keys(2.0f - ty)};
            int xs[4] = {fr_clamp(x0 - 1, W), x0, fr_clamp(x0 + 1, W), fr_clamp(x0 + 2, W)};
            int ys[4] = {fr_clamp(y0 - 1, H), y0, fr_clamp(y0 + 1, H), fr_clamp(y0 + 2, H)};
            for (int k = 0; k < Ch; ++k) {
                float acc = 0.0f;
                for (int a = 0; a < 4; ++a) {
                    float row = 0.0f;
                    for (int c = 0; c < 4; ++c) row += wx[c] * s[((long long)ys[a] * W + xs[c]) * Ch + k];
                    acc += wy[a] * row;
                }
                o[k] = acc;
            }
        } else {
            int x1 = fr_clamp(x0 + 1, W), y1 = fr_clamp(y0 + 1, H);
            for (int k = 0; k < Ch; ++k) {
                float top = (1.0f - tx) * s[((long long)y0 * W + x0) * Ch + k] + tx * s[((long long)y0 * W + x1) * Ch + k];
                float bot = (1.0f - tx) * s[((long long)y1 * W + x0) * Ch + k] + tx * s[((long long)y1 * W + x1) * Ch + k];
                o[k] = (1.0f - ty) * top + ty * bot;
            }
        }
    }
}
