// Topic creation that waits until every partition has a leader.
//
// kafkajs's own `waitForLeaders: true` polls metadata but gives up on the first
// UNKNOWN_TOPIC_OR_PARTITION ("This server does not host this topic-partition"), which a
// KRaft broker answers for a moment after CreateTopics returns, before the new topic's
// metadata reaches the broker's cache. We poll ourselves, bounded in time, and treat that
// answer and LEADER_NOT_AVAILABLE as "not yet".

import type { Admin, ITopicConfig } from 'kafkajs';

const NOT_YET = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE']);
const POLL_MS = 100;

export async function createTopicsAndWait(admin: Admin, topics: ITopicConfig[], timeoutMs = 30_000): Promise<void> {
  await admin.createTopics({ topics, waitForLeaders: false });
  const deadline = Date.now() + timeoutMs;
  let last = 'no metadata yet';
  while (Date.now() < deadline) {
    try {
      const { topics: metadata } = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.topic) });
      const waiting = topics.filter((wanted) => {
        const found = metadata.find((m) => m.name === wanted.topic);
        const led = found?.partitions.filter((p) => p.leader >= 0).length ?? 0;
        return led < (wanted.numPartitions ?? 1);
      });
      if (waiting.length === 0) return;
      last = `no leader yet for ${waiting.map((t) => t.topic).join(', ')}`;
    } catch (err) {
      const type = (err as { type?: string }).type ?? '';
      if (!NOT_YET.has(type)) throw err;
      last = type;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`topics ${topics.map((t) => t.topic).join(', ')} have no leaders after ${timeoutMs} ms (${last})`);
}
