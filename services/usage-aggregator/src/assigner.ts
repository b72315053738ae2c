import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

/**
 * Partition p of every input topic goes to the same member: a task needs both topics' partition p. Pure
 * part: partition numbers dealt round-robin over the sorted member ids.
 */
export function coPartitionedAssignment(
  memberIds: readonly string[],
  topics: readonly string[],
  partitionCount: number,
): Map<string, Record<string, number[]>> {
  const members = [...memberIds].sort();
  const result = new Map<string, Record<string, number[]>>(
    members.map((m) => [m, Object.fromEntries(topics.map((t) => [t, [] as number[]]))]),
  );
  for (let p = 0; p < partitionCount; p++) {
    const owner = result.get(members[p % members.length]!)!;
    for (const topic of topics) owner[topic]!.push(p);
  }
  return result;
}

export const CO_PARTITIONED = 'co-partitioned';

export const coPartitionedAssigner: PartitionAssigner = ({ cluster }) => ({
  name: CO_PARTITIONED,
  version: 0,
  async assign({ members, topics }) {
    // The minimum over topics: a start-up check refuses mismatched counts, this keeps a bad state harmless.
    const count = Math.min(...topics.map((t) => cluster.findTopicPartitionMetadata(t).length));
    const plan = coPartitionedAssignment(
      members.map((m) => m.memberId),
      topics,
      count,
    );
    return [...plan].map(([memberId, assignment]) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({
        version: 0,
        assignment,
        userData: Buffer.alloc(0),
      }),
    }));
  },
  protocol({ topics }) {
    return {
      name: CO_PARTITIONED,
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
    };
  },
});
