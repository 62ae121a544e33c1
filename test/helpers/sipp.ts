/** SIPp (package sip-tester) as test phones: runs scenarios in a work directory and registers UASes. */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freeUdpTcpPort, Proc } from './net.ts';
import { requirePeer } from './peers.ts';

/** REGISTER with digest; the Contact points at another SIPp (the UAS) that takes the calls. */
const REGISTER_XML = new URL('../pbx/sipp/register.xml', import.meta.url).pathname;

/**
 * SIP ports handed out in this process by phonePorts(), each with the media ports SIPp binds beside it
 * (-mp P+2: audio at P+2, video at P+4). A test may pick the ports of several phones before it starts
 * them, so a port that is merely free now must not be handed out twice.
 */
const handedOut = new Set<number>();

async function udpFree(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  const ok = await new Promise<boolean>((resolve) => {
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => resolve(true));
  });
  socket.close();
  return ok;
}

export class SippPhones {
  readonly dir: string;
  readonly procs: Proc[] = [];
  private readonly binary = requirePeer('sipp');
  /** Port of the registrar (the voice server), read when needed. */
  private readonly registrarPort: () => number;

  constructor(dir: string, registrarPort: () => number) {
    this.dir = dir;
    this.registrarPort = registrarPort;
  }

  /** A SIP port (UDP and TCP) and the media port for `-mp`, none handed out before in this process. */
  async phonePorts(): Promise<{ sip: number; media: number }> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const sip = await freeUdpTcpPort();
      const ports = [sip, sip + 2, sip + 4];
      if (ports.some((p) => handedOut.has(p) || handedOut.has(p - 2) || handedOut.has(p + 2))) continue;
      if (!(await udpFree(sip + 2)) || !(await udpFree(sip + 4))) continue;
      for (const p of ports) handedOut.add(p);
      return { sip, media: sip + 2 };
    }
    throw new Error('no free ports for a SIPp phone');
  }

  /** Starts SIPp on loopback with error traces in the work directory. */
  run(args: string[]): Proc {
    const p = new Proc(this.binary, [...args, '-i', '127.0.0.1', '-nostdin', '-trace_err', '-aa'], {
      cwd: this.dir,
    });
    this.procs.push(p);
    return p;
  }

  /** SIPp's -trace_err files, for failure messages. */
  readErrors(): string {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('_errors.log'))
      .map((f) => `${f}:\n${readFileSync(join(this.dir, f), 'utf8').slice(-3000)}`)
      .join('\n');
  }

  /** Registers `ext` with digest so that calls to it reach `contactPort`; expires 0 removes it. */
  async register(ext: string, password: string, contactPort: number, expires = 300): Promise<void> {
    const csv = join(this.dir, `reg-${ext}.csv`);
    writeFileSync(csv, `SEQUENTIAL\n${ext};localhost;${password};${contactPort};${expires}\n`);
    const p = this.run([
      '-sf',
      REGISTER_XML,
      '-inf',
      csv,
      `127.0.0.1:${this.registrarPort()}`,
      '-p',
      String(await freeUdpTcpPort()),
      '-m',
      '1',
      '-timeout',
      '15s',
      '-au',
      ext,
      '-ap',
      password,
    ]);
    assert.equal(await p.wait(20_000), 0, `sipp REGISTER failed:\n${p.output.slice(-2000)}`);
  }

  async stopAll(): Promise<void> {
    for (const p of this.procs) await p.stop();
  }
}
