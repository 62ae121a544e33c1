import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from '../../src/metrics/registry.ts';

describe('metrics registry (Prometheus text format 0.0.4)', () => {
  it('renders gauges read at scrape time and labelled counters', () => {
    const registry = new Registry();
    let sessions = 3;
    registry.gauge('switchboard_xmpp_sessions', 'Open client sessions', () => sessions);
    const ended = registry.counter('switchboard_gateway_monitors_ended_total', 'Client monitors ended');
    ended.declare({ reason: 'error' });
    ended.inc({ reason: 'timeout' });
    ended.inc({ reason: 'timeout' }, 2);
    sessions = 5;
    assert.equal(
      registry.render(),
      [
        '# HELP switchboard_xmpp_sessions Open client sessions',
        '# TYPE switchboard_xmpp_sessions gauge',
        'switchboard_xmpp_sessions 5',
        '# HELP switchboard_gateway_monitors_ended_total Client monitors ended',
        '# TYPE switchboard_gateway_monitors_ended_total counter',
        'switchboard_gateway_monitors_ended_total{reason="error"} 0',
        'switchboard_gateway_monitors_ended_total{reason="timeout"} 3',
        '',
      ].join('\n'),
    );
    assert.equal(ended.get({ reason: 'timeout' }), 3);
  });

  it('escapes label values and help text, and reports a failing gauge as NaN', () => {
    const registry = new Registry();
    registry.gauge('g', 'line1\nline2 \\', () => {
      throw new Error('broken');
    });
    registry.counter('c_total', 'c').inc({ who: 'a"b\\c\nd' });
    const text = registry.render();
    assert.match(text, /# HELP g line1\\nline2 \\\\/);
    assert.match(text, /^g NaN$/m);
    assert.match(text, /c_total\{who="a\\"b\\\\c\\nd"\} 1/);
  });

  it('renders counters a part keeps itself, per label set', () => {
    const registry = new Registry();
    const counts = { error: 1, stop: 4 };
    registry.collectedCounter('ended_total', 'ended', () =>
      Object.entries(counts).map(([reason, n]) => [{ reason }, n]),
    );
    counts.stop = 5;
    assert.match(
      registry.render(),
      /# TYPE ended_total counter\nended_total\{reason="error"\} 1\nended_total\{reason="stop"\} 5\n/,
    );
  });

  it('refuses invalid and duplicate names', () => {
    const registry = new Registry();
    assert.throws(() => registry.gauge('bad-name', 'x', () => 0), /invalid metric name/);
    registry.counter('x_total', 'x');
    assert.throws(() => registry.gauge('x_total', 'x', () => 0), /registered twice/);
  });
});
