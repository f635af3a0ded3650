import { F, randn, tidy } from "@mbert/tensor";
import { describe, expect, it } from "vitest";
import { alibiSlopes, presetConfig, relErr } from "../src/index.js";
import { explicitAttention } from "../src/attention.js";
import { prepareUnpadded } from "../src/inputs.js";

describe("explicit attention (dropout / unsupported head sizes)", () => {
  for (const heads of [4, 6]) {
    it(`matches the fused varlen kernel with ALiBi, ${heads} heads, forward and gradient`, () => {
      tidy(() => {
        const C = 48;
        const c = presetConfig("mosaic-bert-tiny", { hiddenSize: C, numAttentionHeads: heads });
        const lens = [7, 3, 11];
        const T = lens.reduce((a, b) => a + b, 0);
        const cu = [0, 7, 10, 21];
        const x = prepareUnpadded(
          { inputIds: new Int32Array(T).fill(1), cuSeqlens: Int32Array.from(cu), maxSeqlen: 11 },
          c,
          "cpu",
          { positions: false, alibi: true, computeDType: "float32" },
        );
        const qkv = randn([T, 3 * C]);
        qkv.requiresGrad = true;
        const fused = F.varlenAttention(qkv, {
          cuSeqlens: x.layout.kind === "varlen" ? x.layout.cuSeqlens : qkv,
          maxSeqlen: 11,
          numHeads: heads,
          alibiSlopes: x.alibiSlopes,
        });
        const [q, k, v] = [0, 1, 2].map((i) => F.slice(qkv, 1, i * C, (i + 1) * C));
        const explicit = explicitAttention(q!, k!, v!, x, { numHeads: heads, slopes: alibiSlopes(heads) });
        expect(relErr(explicit.data() as Float32Array, fused.data() as Float32Array)).toBeLessThan(1e-5);
        const w = randn([T, C]);
        F.sum(F.mul(fused, w)).backward();
        const g1 = qkv.grad!.data() as Float32Array;
        qkv.zeroGrad();
        F.sum(F.mul(explicit, w)).backward();
        const g2 = qkv.grad!.data() as Float32Array;
        expect(relErr(g2, g1)).toBeLessThan(1e-5);
        qkv.zeroGrad();
      });
    });
  }
});
