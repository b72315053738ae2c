import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

/**
 * Task p owns partition q of every raw topic with q ≡ p (mod tasks), and one member owns all of a task's
 * partitions. Pure part: task numbers dealt round-robin over the sorted member ids, then each member gets
 * every partition of its tasks from each topic's partition count.
 */
export function taskAssignment(
  memberIds: readonly string[],
  partitionCounts: ReadonlyMap<string, number>,
  tasks: number,
): Map<string, Record<string, number[]>> {
  const members = [...memberIds].sort();
  const topics = [...partitionCounts.keys()];
  const result = new Map<string, Record<string, number[]>>(
    members.map((m) => [m, Object.fromEntries(topics.map((t) => [t, [] as number[]]))]),
  );
  for (const [topic, count] of partitionCounts) {
    for (let q = 0; q < count; q++) result.get(members[(q % tasks) % members.length]!)![topic]!.push(q);
  }
  return result;
}

export const TASK_ASSIGNER = 'gpu-meter-tasks';

export const taskAssigner =
  (tasks: number): PartitionAssigner =>
  ({ cluster }) => ({
    name: TASK_ASSIGNER,
    version: 0,
    async assign({ members, topics }) {
      const counts = new Map(topics.map((t) => [t, cluster.findTopicPartitionMetadata(t).length]));
      const plan = taskAssignment(
        members.map((m) => m.memberId),
        counts,
        tasks,
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
        name: TASK_ASSIGNER,
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
      };
    },
  });
