/* event_ids_x4 (AVX2) and event_ids_x4_vl (AVX-512VL): included twice by postfix_scan.c, with
 * EVENT_IDS_X4 (the name), EVENT_IDS_X4_TARGET (the instruction sets) and V_ROT32 .. V_ROT63 (the
 * rotations) defined for each; it undefines them at its end, for the next build. Rows i .. i + 3,
 * one per 64-bit lane. A row with fewer blocks than the others sits out the blocks past its own
 * end (its state is kept by a blend). A block that lies whole inside the row's line is read where
 * it is; the others (the line's end, the NUL, the recipient, the zero padding) are put together in
 * buf. */
__attribute__((target(EVENT_IDS_X4_TARGET))) static void EVENT_IDS_X4(const uint8_t *d, const int64_t *starts,
                                                                       const int64_t *ends, const uint8_t *rcpt,
                                                                       const int32_t *roff, int64_t i, int id_bytes,
                                                                       uint8_t *hex) {
    const __m256i rot24 = _mm256_setr_epi8(3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10,
                                           3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10);
    const __m256i rot16 = _mm256_setr_epi8(2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9,
                                           2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9);
    (void)rot24;
    (void)rot16;
    const uint8_t *line[4], *r[4];
    int64_t ll[4], rl[4], len[4], blocks[4], most = 0;
    for (int L = 0; L < 4; L++) {
        line[L] = d + starts[i + L];
        ll[L] = ends[i + L] - starts[i + L];
        r[L] = rcpt + roff[i + L];
        rl[L] = roff[i + L + 1] - roff[i + L];
        len[L] = ll[L] + 1 + rl[L];
        blocks[L] = (len[L] + 127) / 128;
        if (blocks[L] > most) most = blocks[L];
    }
    __m256i h[8];
    for (int k = 0; k < 8; k++) h[k] = _mm256_set1_epi64x((long long)IV[k]);
    h[0] = V_XOR(h[0], _mm256_set1_epi64x((long long)(0x01010000ULL ^ (uint64_t)id_bytes)));
    uint8_t buf[4][128];
    for (int64_t b = 0; b < most; b++) {
        long long t[4], last[4], live[4];
        const uint8_t *src[4];
        for (int L = 0; L < 4; L++) {
            live[L] = b < blocks[L] ? -1 : 0;
            src[L] = buf[L];
            if (live[L]) {
                if (128 * b + 128 <= ll[L]) src[L] = line[L] + 128 * b;
                else id_block(line[L], ll[L], r[L], rl[L], 128 * b, buf[L]);
            }
            t[L] = (long long)(len[L] < 128 * (b + 1) ? len[L] : 128 * (b + 1));
            last[L] = b == blocks[L] - 1 ? -1 : 0;
        }
        __m256i m[16], v[16];
        for (int k = 0; k < 4; k++) { /* words 4k .. 4k + 3 of the four rows, transposed */
            __m256i r0 = _mm256_loadu_si256((const __m256i *)(src[0] + 32 * k));
            __m256i r1 = _mm256_loadu_si256((const __m256i *)(src[1] + 32 * k));
            __m256i r2 = _mm256_loadu_si256((const __m256i *)(src[2] + 32 * k));
            __m256i r3 = _mm256_loadu_si256((const __m256i *)(src[3] + 32 * k));
            __m256i t0 = _mm256_unpacklo_epi64(r0, r1), t1 = _mm256_unpackhi_epi64(r0, r1);
            __m256i t2 = _mm256_unpacklo_epi64(r2, r3), t3 = _mm256_unpackhi_epi64(r2, r3);
            m[4 * k] = _mm256_permute2x128_si256(t0, t2, 0x20);
            m[4 * k + 1] = _mm256_permute2x128_si256(t1, t3, 0x20);
            m[4 * k + 2] = _mm256_permute2x128_si256(t0, t2, 0x31);
            m[4 * k + 3] = _mm256_permute2x128_si256(t1, t3, 0x31);
        }
        for (int k = 0; k < 8; k++) v[k] = h[k], v[k + 8] = _mm256_set1_epi64x((long long)IV[k]);
        v[12] = V_XOR(v[12], _mm256_set_epi64x(t[3], t[2], t[1], t[0]));
        v[14] = V_XOR(v[14], _mm256_set_epi64x(last[3], last[2], last[1], last[0]));
        ROUNDS(VG);
        __m256i keep = _mm256_set_epi64x(live[3], live[2], live[1], live[0]);
        for (int k = 0; k < 8; k++)
            h[k] = _mm256_blendv_epi8(h[k], V_XOR(h[k], V_XOR(v[k], v[k + 8])), keep);
    }
    uint64_t words[8][4];
    for (int k = 0; k < 8; k++) _mm256_storeu_si256((__m256i *)words[k], h[k]);
    for (int L = 0; L < 4; L++) {
        uint8_t digest[64];
        for (int k = 0; k < id_bytes; k++) digest[k] = (uint8_t)(words[k / 8][L] >> (8 * (k % 8)));
        hex_of(digest, id_bytes, hex + 2 * (i + L) * id_bytes);
    }
}

#undef EVENT_IDS_X4
#undef EVENT_IDS_X4_TARGET
#undef V_ROT32
#undef V_ROT24
#undef V_ROT16
#undef V_ROT63
