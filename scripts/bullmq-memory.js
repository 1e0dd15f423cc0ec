// scripts/bullmq-memory.js
// Redis memory per retained completed BullMQ job, measured the way `spool bench
// --payload-bytes B` measures Spool's: INFO used_memory after N jobs were added in
// bulk and completed by a worker (default retention: completed jobs are kept),
// minus before, divided by N. Payload and result are JSON of B bytes.
//   NODE_PATH=<dir with bullmq and ioredis> node scripts/bullmq-memory.js <port> [N] [B]
// scripts/memory-compare starts a fresh redis-server and runs this and spool bench.
'use strict';
const { Queue, Worker } = require('bullmq');
const IORedis = require('ioredis');

const port = +(process.argv[2] || 6399);
const n = +(process.argv[3] || 20000);
const bytes = +(process.argv[4] || 100);
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };

// {"pad":"xxx…"} of exactly `bytes` bytes (at least the empty pad).
function padded() {
  return { pad: 'x'.repeat(Math.max(0, bytes - '{"pad":""}'.length)) };
}

async function usedMemory(redis) {
  const info = await redis.info('memory');
  return +/used_memory:(\d+)/.exec(info)[1];
}

async function main() {
  const redis = new IORedis(connection);
  const queue = new Queue('memory', { connection });
  await queue.waitUntilReady();
  const before = await usedMemory(redis);
  for (let i = 0; i < n; i += 1000) {
    const k = Math.min(1000, n - i);
    await queue.addBulk(Array.from({ length: k }, () => ({ name: 'noop', data: padded() })));
  }
  let done = 0;
  const finished = new Promise((resolve) => {
    const worker = new Worker('memory', async () => padded(), { connection, concurrency: 50 });
    worker.on('completed', () => {
      if (++done === n) resolve(worker);
    });
  });
  const worker = await finished;
  await worker.close();
  const counts = await queue.getJobCounts('completed');
  const after = await usedMemory(redis);
  console.log(JSON.stringify({ peer: 'bullmq', jobs: n, payload_bytes: bytes, completed: counts.completed,
    payload_json_bytes: JSON.stringify(padded()).length, redis_bytes_per_job: Math.round((after - before) / n) }));
  await queue.close();
  redis.disconnect();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
