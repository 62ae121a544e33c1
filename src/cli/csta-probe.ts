/**
 * `switchboard csta-probe --host H --port P [--device D]`: connects to a CSTA XML server (8-byte header
 * framing), prints the handshake, starts a device monitor on D and prints every event on one line.
 * The operator's tool for checking a real PBX before pointing the gateway at it.
 */
import { parseArgs } from 'node:util';
import { describeMessage, EDITION_NAMESPACES } from '../csta/codec.ts';
import { CstaLink, type LinkDownInfo, type LinkUpInfo } from '../csta/link.ts';
import type { CstaMessage } from '../csta/messages.ts';
import type { Edition } from '../csta/schema.ts';
import type { CstaLogger } from '../csta/session.ts';

const USAGE = `Usage: switchboard csta-probe --host HOST --port PORT [options]

  --device D          start a device monitor on D (repeatable) and print its events
  --edition EDN       ECMA-323 edition to speak until the PBX shows its own: ed3 ed4 ed5 ed6 (default ed4)
  --application-id ID start an ECMA-354 application session first (Avaya AES/DMCC style)
  --no-register       do not send SystemRegister
  --keepalive S       RequestSystemStatus every S seconds (default 30, 0 = off)
  --count N           exit after N events
  --verbose           also print warnings from the codec`;

function stamp(): string {
  return new Date().toISOString().slice(11, 23);
}

export async function run(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (e) {
    process.stderr.write(`csta-probe: ${(e as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const host = values.host;
  const port = Number(values.port);
  if (host === undefined || !Number.isInteger(port) || port <= 0 || port > 65535) {
    process.stderr.write(`csta-probe: --host and a valid --port are required\n\n${USAGE}\n`);
    return 2;
  }
  const edition = (values.edition ?? 'ed4') as Edition;
  if (!(edition in EDITION_NAMESPACES)) {
    process.stderr.write(`csta-probe: unknown edition '${values.edition}'\n`);
    return 2;
  }
  const keepaliveS = Number(values.keepalive ?? '30');
  const count = values.count === undefined ? undefined : Number(values.count);
  const devices = values.device ?? [];
  const out = (line: string) => process.stdout.write(`${stamp()} ${line}\n`);

  const log: CstaLogger = {
    debug: () => {},
    info: (m) => values.verbose && out(`info: ${m}`),
    warn: (m) => values.verbose && out(`warn: ${m}`),
  };
  const link = new CstaLink({
    host,
    port,
    edition,
    reconnect: false,
    keepAliveIntervalMs: Number.isFinite(keepaliveS) ? keepaliveS * 1000 : 30_000,
    systemRegister: !values['no-register'],
    ...(values['application-id'] === undefined
      ? {}
      : { applicationSession: { applicationID: values['application-id'] } }),
    log,
  });

  let up = false;
  const trace = (arrow: string, invokeId: string, text: string) => {
    if (!up) out(`${arrow} ${invokeId} ${text}`);
  };
  link.on('sent', (invokeId, message) => trace('>>', invokeId, describeMessage(message)));
  link.on('received', (invokeId, root, message) =>
    trace('<<', invokeId, message === undefined ? `<${root}> (not decoded)` : describeMessage(message)),
  );

  out(`connecting to ${host}:${port} (${edition})`);
  return await new Promise<number>((resolve) => {
    let events = 0;
    let finished = false;
    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      void link.stop().then(() => resolve(code));
    };
    const onSignal = () => {
      out('interrupted');
      finish(0);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    link.on('up', (info: LinkUpInfo) => {
      up = true;
      const parts = [`link up: ns=${info.ns}`];
      if (info.systemStatus !== undefined) parts.push(`systemStatus=${info.systemStatus}`);
      if (info.sysStatRegisterID !== undefined) parts.push(`sysStatRegisterID=${info.sysStatRegisterID}`);
      if (info.sessionID !== undefined) parts.push(`sessionID=${info.sessionID}`);
      out(parts.join(' '));
      for (const device of devices) {
        link
          .request({ name: 'MonitorStart', monitorObject: { deviceObject: device }, monitorType: 'device' })
          .then(
            (r) => out(`monitoring ${device}: monitorCrossRefID=${r.monitorCrossRefID}`),
            (e: Error) => out(`MonitorStart ${device} failed: ${e.message}`),
          );
      }
      if (devices.length === 0) out('no --device given: printing unsolicited events only');
    });
    link.on('event', (message: CstaMessage) => {
      out(describeMessage(message));
      events++;
      if (count !== undefined && events >= count) finish(0);
    });
    link.on('request', (request) => {
      out(
        `request from the PBX: ${request.message === undefined ? request.root : describeMessage(request.message)}`,
      );
      if (request.message?.name === 'MonitorStop') request.reply({ name: 'MonitorStopResponse' });
      else request.fail({ operation: 'serviceNotSupported' });
    });
    link.on('down', (info: LinkDownInfo) => {
      out(`link down: ${info.reason}`);
      finish(1);
    });
    link.start();
  });
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      device: { type: 'string', multiple: true },
      edition: { type: 'string' },
      'application-id': { type: 'string' },
      'no-register': { type: 'boolean' },
      keepalive: { type: 'string' },
      count: { type: 'string' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
}
