import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import {
  classifyRoot,
  InvokeIdAllocator,
  PendingRequests,
  RequestCancelledError,
  RequestTimeoutError,
} from '../../src/csta/invoke.ts';

describe('InvokeIdAllocator', () => {
  it('counts 0001..9998, wraps to 0001 and never hands out 9999 or 0000', () => {
    const ids = new InvokeIdAllocator();
    assert.equal(ids.allocate(), '0001');
    assert.equal(ids.allocate(), '0002');
    ids.release('0001');
    ids.release('0002');
    const seen = new Set<string>();
    for (let i = 0; i < 9998 * 2; i++) {
      const id = ids.allocate();
      ids.release(id);
      seen.add(id);
    }
    assert.equal(seen.size, 9998);
    assert.equal(seen.has('9999'), false);
    assert.equal(seen.has('0000'), false);
    // After 2 + 2*9998 allocations the counter is back at 0003.
    assert.equal(ids.allocate(), '0003');
  });

  it('skips ids still in flight after wrapping around', () => {
    const ids = new InvokeIdAllocator();
    const first = ids.allocate(); // 0001 stays in flight
    const second = ids.allocate(); // 0002 stays in flight
    for (let i = 0; i < 9996; i++) ids.release(ids.allocate()); // 0003..9998
    assert.equal(first, '0001');
    assert.equal(second, '0002');
    assert.equal(ids.allocate(), '0003');
    assert.equal(ids.isInFlight('0001'), true);
  });

  it('throws when all 9998 ids are in flight', () => {
    const ids = new InvokeIdAllocator();
    for (let i = 0; i < 9998; i++) ids.allocate();
    assert.throws(() => ids.allocate(), /all 9998 invokeIDs are in flight/);
    ids.release('4711');
    assert.equal(ids.allocate(), '4711');
  });
});

describe('classifyRoot', () => {
  it('classifies by root element name (csta.md §2.2)', () => {
    assert.equal(classifyRoot('DeliveredEvent'), 'event');
    assert.equal(classifyRoot('TransferedEvent'), 'event');
    assert.equal(classifyRoot('ApplicationSessionTerminated'), 'event');
    assert.equal(classifyRoot('MonitorStartResponse'), 'response');
    assert.equal(classifyRoot('StartApplicationSessionPosResponse'), 'response');
    assert.equal(classifyRoot('StartApplicationSessionNegResponse'), 'response');
    assert.equal(classifyRoot('CSTAErrorCode'), 'error');
    assert.equal(classifyRoot('SystemStatus'), 'request');
    assert.equal(classifyRoot('MonitorStop'), 'request');
    assert.equal(classifyRoot('SnapshotDeviceData'), 'request');
  });
});

describe('PendingRequests', () => {
  it('resolves by invokeID and releases the id', async () => {
    const pending = new PendingRequests<string>();
    const a = pending.start('MonitorStart', 10_000);
    const b = pending.start('MakeCall', 10_000);
    assert.notEqual(a.invokeId, b.invokeId);
    assert.equal(pending.requestName(b.invokeId), 'MakeCall');
    assert.equal(pending.resolve(b.invokeId, 'made'), true);
    assert.equal(pending.resolve(b.invokeId, 'again'), false, 'a second answer is stray');
    assert.equal(await b.result, 'made');
    assert.equal(pending.ids.isInFlight(b.invokeId), false);
    pending.cancelAll('closing');
    await assert.rejects(a.result, RequestCancelledError);
    assert.equal(pending.size, 0);
  });

  it('times out a request that gets no answer (mock timers)', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const pending = new PendingRequests<string>();
    const { invokeId, result } = pending.start('RequestSystemStatus', 10_000);
    const rejected = assert.rejects(result, (e: unknown) => {
      assert.ok(e instanceof RequestTimeoutError);
      assert.equal(e.invokeId, invokeId);
      assert.match(e.message, /RequestSystemStatus \(invokeID 0001\) got no answer within 10000 ms/);
      return true;
    });
    t.mock.timers.tick(9_999);
    assert.equal(pending.size, 1);
    t.mock.timers.tick(1);
    await rejected;
    assert.equal(pending.size, 0);
    assert.equal(pending.resolve(invokeId, 'late'), false, 'a late answer finds nothing');
    mock.timers.reset();
  });
});
