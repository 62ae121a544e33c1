import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  encodeFrame,
  type Frame,
  FramingError,
  formatInvokeId,
  HeaderFrameSplitter,
  MAX_BODY_BYTES,
} from '../../src/csta/framing.ts';

function collect(options: { maxFrameBytes?: number } = {}) {
  const frames: Frame[] = [];
  const errors: FramingError[] = [];
  const versions: number[] = [];
  const splitter = new HeaderFrameSplitter(
    {
      onFrame: (f) => frames.push(f),
      onError: (e) => errors.push(e),
      onOddVersion: (v) => versions.push(v),
    },
    options,
  );
  return { splitter, frames, errors, versions };
}

function header(version: number, length: number, invokeId: string): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(version, 0);
  b.writeUInt16BE(length, 2);
  b.write(invokeId, 4, 'latin1');
  return b;
}

describe('encodeFrame', () => {
  it('writes the worked example header of csta.md §2.1 (202-byte body, invokeID 0002)', () => {
    const body = `<MonitorStartResponse>${'x'.repeat(202 - 45)}</MonitorStartResponse>`;
    assert.equal(Buffer.byteLength(body), 202);
    const frame = encodeFrame('0002', body);
    assert.equal(frame.subarray(0, 8).toString('hex'), '000000d230303032');
    assert.equal(frame.length, 210);
  });

  it('counts the length in bytes, not characters', () => {
    const body = '<a>é€𝄞</a>';
    const frame = encodeFrame('9999', body);
    assert.equal(frame.readUInt16BE(2), 8 + Buffer.byteLength(body));
    assert.notEqual(frame.readUInt16BE(2), 8 + body.length);
  });

  it('refuses bodies over 65 527 bytes and accepts exactly 65 527', () => {
    assert.equal(encodeFrame('0001', `<a>${'x'.repeat(MAX_BODY_BYTES - 7)}</a>`).readUInt16BE(2), 0xffff);
    assert.throws(() => encodeFrame('0001', `<a>${'x'.repeat(MAX_BODY_BYTES - 6)}</a>`), FramingError);
  });

  it('refuses invokeIDs that are not four digits', () => {
    assert.throws(() => encodeFrame('12', '<a/>'), FramingError);
    assert.throws(() => encodeFrame('12a4', '<a/>'), FramingError);
    assert.equal(formatInvokeId(7), '0007');
    assert.throws(() => formatInvokeId(10000), RangeError);
  });
});

describe('HeaderFrameSplitter', () => {
  it('splits merged frames and joins partial ones', () => {
    const { splitter, frames, errors } = collect();
    const a = encodeFrame('0001', '<SystemStatus/>');
    const b = encodeFrame('9999', '<DeliveredEvent>ü</DeliveredEvent>');
    const all = Buffer.concat([a, b, a]);
    splitter.push(all.subarray(0, 3));
    splitter.push(all.subarray(3, a.length + 5));
    assert.equal(frames.length, 1);
    splitter.push(all.subarray(a.length + 5));
    assert.deepEqual(
      frames.map((f) => [f.invokeId, f.body.toString('utf8')]),
      [
        ['0001', '<SystemStatus/>'],
        ['9999', '<DeliveredEvent>ü</DeliveredEvent>'],
        ['0001', '<SystemStatus/>'],
      ],
    );
    assert.deepEqual(errors, []);
    assert.equal(splitter.bufferedBytes, 0);
  });

  it('property: any chunking of any frame sequence yields the same frames', () => {
    const bodyArb = fc
      .string({ unit: 'grapheme', maxLength: 300 })
      .map((s) => `<m>${s.replace(/[<&]/g, '')}</m>`);
    const frameArb = fc.record({ id: fc.integer({ min: 0, max: 9999 }), body: bodyArb });
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(64)), (list, cuts) => {
        const wire = Buffer.concat(list.map((f) => encodeFrame(formatInvokeId(f.id), f.body)));
        const { splitter, frames, errors } = collect();
        let pos = 0;
        for (const cut of cuts) {
          if (pos >= wire.length) break;
          const end = Math.min(wire.length, pos + cut);
          splitter.push(wire.subarray(pos, end));
          pos = end;
        }
        splitter.push(wire.subarray(pos));
        assert.deepEqual(errors, []);
        assert.deepEqual(
          frames.map((f) => [f.invokeId, f.body.toString('utf8')]),
          list.map((f) => [formatInvokeId(f.id), f.body]),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('property: byte-at-a-time delivery of multibyte bodies', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 100 }), (s) => {
        const body = `<x>${s.replace(/[<&\uD800-\uDFFF]/g, '')}</x>`;
        const wire = encodeFrame('0042', body);
        const { splitter, frames } = collect();
        for (let i = 0; i < wire.length; i++) splitter.push(wire.subarray(i, i + 1));
        assert.equal(frames.length, 1);
        assert.equal(frames[0]!.body.toString('utf8'), body);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects a length of 8 or less with a clear error and then ignores input', () => {
    for (const length of [0, 1, 8]) {
      const { splitter, frames, errors } = collect();
      splitter.push(header(0, length, '0001'));
      splitter.push(encodeFrame('0001', '<a/>'));
      assert.equal(errors.length, 1);
      assert.match(
        errors[0]!.message,
        new RegExp(`frame length ${length} is not more than the 8-byte header`),
      );
      assert.equal(frames.length, 0);
      assert.equal(splitter.failed, true);
    }
  });

  it('rejects a length over the configured limit', () => {
    const { splitter, errors } = collect({ maxFrameBytes: 1000 });
    splitter.push(header(0, 1001, '0001'));
    assert.match(errors[0]!.message, /frame length 1001 is over the limit of 1000 bytes/);
  });

  it('rejects a garbage header instead of waiting for a guessed length', () => {
    const { splitter, errors, frames } = collect();
    splitter.push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.equal(frames.length, 0);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /invokeID is not four ASCII digits/);
  });

  it('rejects a frame whose body is not XML', () => {
    const { splitter, errors, frames } = collect();
    splitter.push(Buffer.concat([header(0, 8 + 5, '0001'), Buffer.from('hello')]));
    assert.equal(frames.length, 0);
    assert.match(errors[0]!.message, /frame 0001: body of 5 bytes does not start with '<'/);
  });

  it('property: a wrong length in one header is reported, never skipped silently', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -20, max: 20 }).filter((d) => d !== 0),
        (delta) => {
          const body = '<SystemStatus><systemStatus>normal</systemStatus></SystemStatus>';
          const bad = Buffer.concat([header(0, 8 + body.length + delta, '0001'), Buffer.from(body)]);
          const good = encodeFrame('0002', body);
          const { splitter, errors, frames } = collect();
          splitter.push(Buffer.concat([bad, good, good, good]));
          // Either the error is reported, or every frame delivered is still a whole document.
          assert.equal(errors.length, 1, `delta ${delta}: ${frames.map((f) => f.body.toString()).join('|')}`);
        },
      ),
    );
  });

  it('tolerates a non-zero version field (ASCII "00") and reports it once', () => {
    const { splitter, frames, versions } = collect();
    const frame = encodeFrame('0003', '<a/>');
    frame.write('00', 0, 'latin1');
    splitter.push(Buffer.concat([frame, frame]));
    assert.equal(frames.length, 2);
    assert.deepEqual(versions, [0x3030]);
  });

  it('accepts a body with a BOM and leading whitespace', () => {
    const { splitter, frames, errors } = collect();
    splitter.push(encodeFrame('0001', '\uFEFF\r\n <a/>'));
    assert.equal(frames.length, 1);
    assert.deepEqual(errors, []);
  });

  it('property: random garbage never throws and never yields a non-XML frame', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const { splitter, frames } = collect();
        splitter.push(bytes);
        for (const f of frames) assert.match(f.body.toString('latin1'), /^(\xef\xbb\xbf)?[\s]*</);
      }),
      { numRuns: 500 },
    );
  });
});
