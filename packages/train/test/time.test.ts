import { describe, expect, it } from "vitest";
import { Time, TimeStringError, Timestamp, fractionOf, reached, resolveTime } from "../src/index.js";

describe("time strings", () => {
  it("parses every unit", () => {
    expect(Time.parse("2ep")).toMatchObject({ value: 2, unit: "ep" });
    expect(Time.parse("70000ba")).toMatchObject({ value: 70000, unit: "ba" });
    expect(Time.parse("286720000sp")).toMatchObject({ value: 286720000, unit: "sp" });
    expect(Time.parse("1e9tok")).toMatchObject({ value: 1e9, unit: "tok" });
    expect(Time.parse("0.06dur")).toMatchObject({ value: 0.06, unit: "dur" });
    expect(Time.parse("70_000ba").value).toBe(70000);
    expect(Time.parse("3E4TOK")).toMatchObject({ value: 30000, unit: "tok" });
    expect(Time.parse(".5dur").value).toBe(0.5);
  });

  it("rejects malformed strings with a message naming the input", () => {
    for (const bad of ["", "ba", "12", "1.5ba", "-3ep", "2 epochs", "1.2dur", "abc", "1e-1ba"]) {
      expect(() => Time.parse(bad), bad).toThrow(TimeStringError);
    }
    expect(() => Time.parse("12xy")).toThrow(/'12xy'/);
  });

  it("resolves dur against maxDuration, and epochs to batches when asked", () => {
    expect(resolveTime(Time.parse("0.06dur"), Time.parse("1000ba")).toString()).toBe("60ba");
    expect(
      resolveTime(Time.parse("0.5dur"), Time.parse("2ep"), 10, { epochsToBatches: true }).toString(),
    ).toBe("10ba");
    expect(resolveTime(Time.parse("1ep"), Time.parse("2ep"), 7, { epochsToBatches: true }).toString()).toBe(
      "7ba",
    );
    expect(resolveTime(Time.parse("0.06dur"), Time.parse("286720000sp")).toString()).toBe("17203200sp");
  });

  it("counts every unit in a Timestamp", () => {
    let ts = new Timestamp();
    ts = ts.afterBatch(4, 100).afterBatch(4, 90);
    expect(ts.toJSON()).toMatchObject({ batch: 2, sample: 8, token: 190, batchInEpoch: 2, epoch: 0 });
    ts = ts.afterEpoch();
    expect(ts.toJSON()).toMatchObject({ epoch: 1, batch: 2, batchInEpoch: 0, sampleInEpoch: 0 });
    expect(reached(ts, Time.parse("2ba"))).toBe(true);
    expect(reached(ts, Time.parse("191tok"))).toBe(false);
    expect(fractionOf(ts, Time.parse("8ba"))).toBe(0.25);
    expect(new Timestamp(ts.toJSON())).toEqual(ts);
  });
});
