// A refused value is quoted in its message (a value differing only by case or white space read
// like an allowed one: "got fifo ") and cut short (a 1 MB string was copied whole into the
// message: the API's error body and every log line).
import { describe, expect, it } from 'vitest';
import { CATALOG, findKnob, validateValue, type KnobSpec } from '../knobs/index.ts';

const spec = findKnob(CATALOG, 'scheduler.policy') as KnobSpec;
const int = findKnob(CATALOG, 'scheduler.retry_limit') as KnobSpec;

describe('refused values in messages', () => {
  it('a value with trailing white space is quoted in the message', () => {
    const v = validateValue(spec, 'fifo ');
    expect(v?.rule).toBe('enum');
    expect(v?.message).toContain('"fifo "');
  });

  it('a huge string does not make a huge message', () => {
    const huge = 'x'.repeat(1_000_000);
    expect(validateValue(spec, huge)?.message.length).toBeLessThan(1_000);
    expect(validateValue(int, huge)?.message.length).toBeLessThan(1_000);
  });
});
