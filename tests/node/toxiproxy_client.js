// Toxiproxy's Node client (toxiproxy-node-client, npm) driving
// vaurien-toxiproxy: run by tests/test_toxiproxy_node_client.py as
//   node toxiproxy_client.js API_URL ECHO_PORT SENDER_PORT
// Each check measures the toxic's effect on real traffic; the script
// prints "ok NAME" per check and exits 1 at the first failure.
'use strict';
const net = require('net');
const assert = require('assert');
const { Toxiproxy } = require('toxiproxy-node-client');

const [api, echoPort, senderPort] = process.argv.slice(2);
const toxiproxy = new Toxiproxy(api);

function connect(listen) {
  const i = listen.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: listen.slice(0, i),
                               port: Number(listen.slice(i + 1)) });
    sock.setNoDelay(true);
    sock.once('connect', () => resolve(sock));
    sock.once('error', reject);
  });
}

// Send data, wait for `size` bytes; resolves with seconds taken.
function exchange(sock, data, size) {
  return new Promise((resolve, reject) => {
    let got = 0;
    const start = process.hrtime.bigint();
    const onData = (chunk) => {
      got += chunk.length;
      if (got >= size) {
        sock.off('data', onData);
        resolve(Number(process.hrtime.bigint() - start) / 1e9);
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.write(data);
  });
}

// Send data and read to the end: {bytes, how: 'eof'|'reset', seconds}.
function readToEnd(sock, data, half) {
  return new Promise((resolve) => {
    let bytes = 0;
    const start = process.hrtime.bigint();
    const took = () => Number(process.hrtime.bigint() - start) / 1e9;
    sock.on('data', (chunk) => { bytes += chunk.length; });
    sock.once('end', () => resolve({ bytes, how: 'eof', seconds: took() }));
    sock.once('error', (err) => resolve({
      bytes, how: err.code === 'ECONNRESET' ? 'reset' : err.code,
      seconds: took() }));
    if (half) sock.end(data); else sock.write(data);
  });
}

const checks = [];
function check(name, fn) { checks.push([name, fn]); }

check('version', async () => {
  const text = await toxiproxy.getVersion();
  assert.deepStrictEqual(JSON.parse(text), { version: '2.12.0' });
});

check('create, get, getAll', async () => {
  const proxy = await toxiproxy.createProxy({
    name: 'echo', listen: 'localhost:0', upstream: `127.0.0.1:${echoPort}` });
  assert.match(proxy.listen, /^127\.0\.0\.1:\d+$/);
  assert.strictEqual(proxy.enabled, true);
  const again = await toxiproxy.get('echo');
  assert.strictEqual(again.listen, proxy.listen);
  const all = await toxiproxy.getAll();
  assert.deepStrictEqual(Object.keys(all), ['echo']);
  await assert.rejects(toxiproxy.createProxy({
    name: 'echo', listen: 'localhost:0', upstream: `127.0.0.1:${echoPort}` }),
    /409/);
});

check('latency: add, update, remove', async () => {
  const proxy = await toxiproxy.get('echo');
  const sock = await connect(proxy.listen);
  assert.ok(await exchange(sock, 'x', 1) < 0.25);
  const toxic = await proxy.addToxic({
    type: 'latency', stream: 'downstream', toxicity: 1,
    attributes: { latency: 300 } });
  assert.strictEqual(toxic.name, 'latency_downstream');
  assert.ok(await exchange(sock, 'x', 1) >= 0.3);
  const updated = await toxic.update({ attributes: { latency: 600 } });
  assert.strictEqual(updated.attributes.latency, 600);
  assert.ok(await exchange(sock, 'x', 1) >= 0.6);
  const shown = await proxy.getToxic('latency_downstream');
  assert.strictEqual(shown.attributes.latency, 600);
  await toxic.remove();
  assert.ok(await exchange(sock, 'x', 1) < 0.25);
  sock.destroy();
});

check('bandwidth', async () => {
  const proxy = await toxiproxy.createProxy({
    name: 'sender', listen: '127.0.0.1:0',
    upstream: `127.0.0.1:${senderPort}` });
  await proxy.addToxic({ type: 'bandwidth', stream: 'downstream',
                         toxicity: 1, attributes: { rate: 50 } });
  const sock = await connect(proxy.listen);
  const took = await exchange(sock, 'go', 50000);
  assert.ok(took >= 0.8 && took < 1.8, `took ${took}`);
  sock.destroy();
  await (await proxy.getToxic('bandwidth_downstream')).remove();
});

check('slicer', async () => {
  const proxy = await toxiproxy.get('sender');
  await proxy.addToxic({ type: 'slicer', stream: 'downstream', toxicity: 1,
                         attributes: { average_size: 500, size_variation: 0,
                                       delay: 1000 } });
  const sock = await connect(proxy.listen);
  let reads = 0;
  sock.on('data', () => { reads += 1; });
  await exchange(sock, 'go', 50000);
  assert.ok(reads >= 20, `reads ${reads}`);
  sock.destroy();
  await (await proxy.getToxic('slicer_downstream')).remove();
});

check('limit_data', async () => {
  const proxy = await toxiproxy.get('sender');
  await proxy.addToxic({ type: 'limit_data', stream: 'downstream',
                         toxicity: 1, attributes: { bytes: 1000 } });
  const result = await readToEnd(await connect(proxy.listen), 'go');
  assert.deepStrictEqual([result.bytes, result.how], [1000, 'eof']);
  await (await proxy.getToxic('limit_data_downstream')).remove();
});

check('timeout', async () => {
  const proxy = await toxiproxy.get('sender');
  await proxy.addToxic({ type: 'timeout', stream: 'downstream', toxicity: 1,
                         attributes: { timeout: 400 } });
  const result = await readToEnd(await connect(proxy.listen), 'go');
  assert.strictEqual(result.bytes, 0);
  assert.ok(result.seconds >= 0.35, `took ${result.seconds}`);
  await (await proxy.getToxic('timeout_downstream')).remove();
});

check('reset_peer', async () => {
  const proxy = await toxiproxy.get('sender');
  await proxy.addToxic({ type: 'reset_peer', stream: 'downstream',
                         toxicity: 1, attributes: { timeout: 100 } });
  const result = await readToEnd(await connect(proxy.listen), 'go');
  assert.strictEqual(result.how, 'reset');
  await (await proxy.getToxic('reset_peer_downstream')).remove();
});

check('a Vaurien handler as a toxic, slow_close', async () => {
  const proxy = await toxiproxy.get('echo');
  const toxic = await proxy.addToxic({ type: 'delay', stream: 'upstream',
                                       toxicity: 1,
                                       attributes: { sleep: 0.3 } });
  assert.strictEqual(toxic.attributes.sleep, 0.3);
  const sock = await connect(proxy.listen);
  assert.ok(await exchange(sock, 'x', 1) >= 0.3);
  sock.destroy();
  await toxic.remove();
  const slow = await proxy.addToxic({ type: 'slow_close',
                                      stream: 'downstream', toxicity: 1,
                                      attributes: { delay: 400 } });
  // The client sends and half-closes; the echo server answers and closes;
  // its close reaches the client 400 ms late.
  const result = await readToEnd(await connect(proxy.listen), 'abc', true);
  assert.deepStrictEqual([result.bytes, result.how], [3, 'eof']);
  assert.ok(result.seconds >= 0.4, `took ${result.seconds}`);
  await slow.remove();
});

check('disable, enable', async () => {
  const proxy = await toxiproxy.get('echo');
  const off = await proxy.update({ enabled: false, listen: proxy.listen,
                                   upstream: proxy.upstream });
  assert.strictEqual(off.enabled, false);
  await assert.rejects(connect(proxy.listen));
  const on = await off.update({ enabled: true, listen: off.listen,
                                upstream: off.upstream });
  assert.strictEqual(on.enabled, true);
  (await connect(on.listen)).destroy();
});

check('populate, reset', async () => {
  const proxies = await toxiproxy.populate([
    { name: 'p1', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echoPort}`,
      enabled: true },
    { name: 'p2', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echoPort}`,
      enabled: false }]);
  assert.deepStrictEqual(Object.keys(proxies).sort(), ['p1', 'p2']);
  assert.strictEqual(proxies.p2.enabled, false);
  await proxies.p1.addToxic({ type: 'latency', stream: 'downstream',
                              toxicity: 1, attributes: { latency: 100 } });
  await toxiproxy.reset();
  const all = await toxiproxy.getAll();
  assert.strictEqual(all.p2.enabled, true);
  await assert.rejects(all.p1.getToxic('latency_downstream'), /404/);
  await all.p1.remove();
  await assert.rejects(toxiproxy.get('p1'), /404/);
});

(async () => {
  for (const [name, fn] of checks) {
    try {
      await fn();
      console.log(`ok ${name}`);
    } catch (err) {
      console.log(`FAILED ${name}: ${err.stack || err}`);
      process.exit(1);
    }
  }
  process.exit(0);
})();
