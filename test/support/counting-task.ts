/**
 * A task that counts from its checkpoint: it reads the count in $GQ_CHECKPOINT_DIR/count (0 when
 * there is none), counts to `to` (`stepS` seconds a step, each step saved at once), then writes a
 * results file "start,end". A start above 0 proves that the attempt resumed from a checkpoint.
 * Outside the task's folders, each start is appended to `starts` and each step written to
 * `progress`, when given (so that a test sees how far it got).
 */
export function countingTask(o: { to: number; stepS: number; starts?: string; progress?: string }): string {
  const c = '"$GQ_CHECKPOINT_DIR/count"';
  return [
    `n=$(cat ${c} 2>/dev/null || echo 0); s=$n`,
    ...(o.starts ? [`echo $s >> ${o.starts}`] : []),
    `while [ $n -lt ${o.to} ]; do sleep ${o.stepS}; n=$((n+1)); echo $n > ${c}.tmp; mv ${c}.tmp ${c}${o.progress ? `; echo $n > ${o.progress}` : ''}; done`,
    `printf 'start,end\\n%s,%s\\n' $s $n > results.csv`,
  ].join('; ');
}

/** The start and end of a counting task, from its results file. */
export function countedRange(results: string): { start: number; end: number } {
  const [start, end] = results.trim().split('\n')[1]!.split(',').map(Number);
  return { start: start!, end: end! };
}
