/**
 * A headless baresip phone for end-to-end tests: config from the shared recipe (peers-howto.md §8) with
 * our ports, an account that registers at the PBX with digest, and a ctrl_tcp client
 * (netstring-framed JSON) to dial, accept and hang up, and to wait for call events.
 */
import { EventEmitter, once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Proc } from './net.ts';
import { requirePeer } from './peers.ts';

export interface BaresipEvent {
  event?: boolean;
  response?: boolean;
  type?: string;
  class?: string;
  ok?: boolean;
  data?: string;
  token?: string;
  [key: string]: unknown;
}

export interface BaresipOptions {
  dir: string;
  sipPort: number;
  ctrlPort: number;
  rtpPorts: [number, number];
  /** Account line, e.g. `<sip:1001@localhost>;auth_pass=x;outbound="sip:127.0.0.1:5060";regint=60`. */
  account: string;
}

export class BaresipPhone extends EventEmitter {
  readonly proc: Proc;
  private socket: Socket | undefined;
  private buffer = '';
  readonly events: BaresipEvent[] = [];
  private nextToken = 1;
  private readonly ctrlPort: number;

  constructor(options: BaresipOptions) {
    super();
    const binary = requirePeer('baresip');
    mkdirSync(options.dir, { recursive: true });
    let config = readFileSync(new URL('../pbx/baresip/config', import.meta.url), 'utf8');
    config = config
      .replace(/^sip_listen\s+.*$/m, `sip_listen\t\t127.0.0.1:${options.sipPort}`)
      .replace(/^ctrl_tcp_listen\s+.*$/m, `ctrl_tcp_listen\t\t127.0.0.1:${options.ctrlPort}`)
      .replace(/^rtp_ports\s+.*$/m, `rtp_ports\t\t${options.rtpPorts[0]}-${options.rtpPorts[1]}`);
    writeFileSync(join(options.dir, 'config'), config);
    writeFileSync(join(options.dir, 'accounts'), `${options.account}\n`);
    this.proc = new Proc(binary, ['-f', options.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.ctrlPort = options.ctrlPort;
  }

  async ready(timeoutMs = 15_000): Promise<void> {
    await this.proc.waitForOutput(/baresip is ready/, timeoutMs);
    const socket = connect(this.ctrlPort, '127.0.0.1');
    await once(socket, 'connect');
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => this.receive(d));
    socket.on('error', () => undefined);
    this.socket = socket;
  }

  private receive(data: string): void {
    this.buffer += data;
    for (;;) {
      const colon = this.buffer.indexOf(':');
      if (colon < 0) return;
      const length = Number(this.buffer.slice(0, colon));
      if (!Number.isFinite(length) || this.buffer.length < colon + 1 + length + 1) return;
      const json = this.buffer.slice(colon + 1, colon + 1 + length);
      this.buffer = this.buffer.slice(colon + 1 + length + 1);
      try {
        const message = JSON.parse(json) as BaresipEvent;
        this.events.push(message);
        this.emit('message', message);
      } catch {
        // ignore a frame that is not JSON
      }
    }
  }

  /** Sends a command and resolves with its response. */
  async command(command: string, params = '', timeoutMs = 5000): Promise<BaresipEvent> {
    const token = `t${this.nextToken++}`;
    const body = JSON.stringify({ command, params, token });
    const response = this.waitFor(
      (m) => m.response === true && m.token === token,
      timeoutMs,
      `response to ${command}`,
    );
    this.socket?.write(`${Buffer.byteLength(body)}:${body},`);
    return response;
  }

  /** Waits for a message (already received or future) matching `predicate`. */
  waitFor(
    predicate: (m: BaresipEvent) => boolean,
    timeoutMs: number,
    what: string,
    from = 0,
  ): Promise<BaresipEvent> {
    const seen = this.events.slice(from).find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('message', listener);
        reject(
          new Error(
            `baresip: timed out waiting for ${what}; events: ${this.events.map((e) => e.type ?? 'response').join(',')}`,
          ),
        );
      }, timeoutMs);
      const listener = (m: BaresipEvent) => {
        if (!predicate(m)) return;
        clearTimeout(timer);
        this.off('message', listener);
        resolve(m);
      };
      this.on('message', listener);
    });
  }

  waitForEvent(type: string, timeoutMs = 10_000, from = 0): Promise<BaresipEvent> {
    return this.waitFor((m) => m.event === true && m.type === type, timeoutMs, type, from);
  }

  async stop(): Promise<void> {
    this.socket?.destroy();
    await this.proc.stop(2000);
  }
}
