// What the dashboard says of the live workers' refresh intervals.
import { describe, expect, it } from 'vitest';
import { refreshIntervalsDisagree } from './workers-alive';

const w = (hostname: string, refreshIntervalMs: number) => ({ hostname, holder: `${hostname}:1`, refreshIntervalMs });

describe('refreshIntervalsDisagree', () => {
  it('says nothing while every refreshing worker and the console share one interval, or nothing refreshes', () => {
    expect(refreshIntervalsDisagree([w('a', 30_000), w('b', 30_000), w('c', 0)], 30_000)).toBeNull();
    expect(refreshIntervalsDisagree([w('a', 0)], 30_000)).toBeNull();
    expect(refreshIntervalsDisagree([], 30_000)).toBeNull();
    // The console with the refresh off flags nothing: no interval of its own to disagree with.
    expect(refreshIntervalsDisagree([w('a', 5_000)], 0)).toBeNull();
  });

  it('names the workers that disagree, with their intervals', () => {
    expect(refreshIntervalsDisagree([w('a', 60_000), w('b', 5_000)], 5_000)).toBe(
      "the workers refresh at different intervals (a 60 s, b 5 s): a herd goes at the slowest one's pace. Give every worker and the console the same PGHERD_REFRESH_INTERVAL_MS",
    );
  });

  it('says when the console judges by another interval than the workers refresh at', () => {
    expect(refreshIntervalsDisagree([w('a', 60_000), w('b', 60_000)], 30_000)).toBe(
      "the workers refresh every 60 s, the console judges unobserved instances by 30 s: give the console the workers' PGHERD_REFRESH_INTERVAL_MS",
    );
  });
});
