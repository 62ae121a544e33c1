import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { CstaMessage } from '../../src/csta/messages.ts';
import { CstaServer, type CstaServerOptions } from '../../src/csta/server.ts';
import { Proc } from '../helpers/net.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUNNER =
  "const m = await import('./src/cli/csta-probe.ts'); process.exitCode = await m.run(process.argv.slice(1));";

function probe(t: TestContext, args: string[]): Proc {
  const proc = new Proc(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', RUNNER, '--', ...args],
    {
      cwd: ROOT,
    },
  );
  t.after(() => proc.stop());
  return proc;
}

async function server(t: TestContext, options: CstaServerOptions = {}) {
  const s = new CstaServer(options);
  const { port } = await s.listen();
  t.after(() => s.close());
  return { server: s, port };
}

const EVENTS: CstaMessage[] = [
  {
    name: 'DeliveredEvent',
    monitorCrossRefID: 'mon202',
    connection: { callID: 'c1', deviceID: '202' },
    alertingDevice: { deviceIdentifier: '202' },
    callingDevice: { deviceIdentifier: '201' },
    calledDevice: { deviceIdentifier: '202' },
    lastRedirectionDevice: { notRequired: true },
    localConnectionInfo: 'alerting',
    cause: 'newCall',
  },
  {
    name: 'ConnectionClearedEvent',
    monitorCrossRefID: 'mon202',
    droppedConnection: { callID: 'c1', deviceID: '201' },
    releasingDevice: { deviceIdentifier: '201' },
    localConnectionInfo: 'null',
    cause: 'normalClearing',
  },
];

describe('switchboard csta-probe', () => {
  it('prints the handshake, starts the monitor and prints each event on one line', async (t) => {
    const { server: s, port } = await server(t, { edition: 'ed6' });
    s.on('connection', (c) =>
      c.on('request', (request) => {
        const m = request.message;
        if (m?.name !== 'MonitorStart' || !('deviceObject' in m.monitorObject)) {
          request.fail({ operation: 'serviceNotSupported' });
          return;
        }
        request.reply({ name: 'MonitorStartResponse', monitorCrossRefID: 'mon202' });
        for (const e of EVENTS) c.sendEvent(e);
      }),
    );
    const proc = probe(t, ['--host', '127.0.0.1', '--port', String(port), '--device', '202', '--count', '2']);
    assert.equal(await proc.wait(20_000), 0, proc.output);
    const lines = proc.output.trim().split('\n');
    const text = lines.map((l) => l.replace(/^\d\d:\d\d:\d\d\.\d{3} /, ''));
    assert.deepEqual(text.slice(0, 6), [
      `connecting to 127.0.0.1:${port} (ed4)`,
      '<< 0001 SystemStatus systemStatus=normal',
      '>> 0001 SystemStatusResponse',
      '>> 0001 SystemRegister',
      `<< 0001 SystemRegisterResponse sysStatRegisterID=${text[4]!.split('=').at(-1)}`,
      `link up: ns=http://www.ecma-international.org/standards/ecma-323/csta/ed6 systemStatus=normal sysStatRegisterID=${text[4]!.split('=').at(-1)}`,
    ]);
    assert.ok(text.includes('monitoring 202: monitorCrossRefID=mon202'), proc.output);
    assert.ok(
      text.includes(
        'DeliveredEvent monitorCrossRefID=mon202 connection=c1/202 alertingDevice=202 callingDevice=201 calledDevice=202 lastRedirectionDevice=notRequired localConnectionInfo=alerting cause=newCall',
      ),
      proc.output,
    );
    assert.ok(
      text.includes(
        'ConnectionClearedEvent monitorCrossRefID=mon202 droppedConnection=c1/201 releasingDevice=201 localConnectionInfo=null cause=normalClearing',
      ),
      proc.output,
    );
  });

  it('reports a failed MonitorStart and a link that goes down, exiting 1', async (t) => {
    const { server: s, port } = await server(t);
    s.on('connection', (c) =>
      c.on('request', (request) => {
        request.fail({ operation: 'invalidDeviceID' });
        setImmediate(() => c.close());
      }),
    );
    const proc = probe(t, ['--host', '127.0.0.1', '--port', String(port), '--device', '999']);
    assert.equal(await proc.wait(20_000), 1, proc.output);
    assert.match(
      proc.output,
      /MonitorStart 999 failed: MonitorStart failed: CSTAErrorCode operation\/invalidDeviceID/,
    );
    assert.match(proc.output, /link down: connection closed/);
  });

  it('rejects bad arguments with usage and exit code 2', async (t) => {
    const proc = probe(t, ['--host', '127.0.0.1']);
    assert.equal(await proc.wait(20_000), 2);
    assert.match(proc.output, /--host and a valid --port are required/);
    const unknown = probe(t, ['--bogus']);
    assert.equal(await unknown.wait(20_000), 2);
    assert.match(unknown.output, /Usage: switchboard csta-probe/);
  });
});
