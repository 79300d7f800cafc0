"""Follow a submitted run to its end: poll its state and print one line per change of the run or a task."""

from __future__ import annotations

import time
from typing import Callable, Dict, Optional, Sequence, Tuple


def follow(
    fetch: Callable[[], Tuple[str, Dict[str, str], Optional[str]]],
    final_states: Sequence[str],
    *,
    poll_interval: float = 10.0,
    timeout: Optional[float] = None,
    out: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
) -> Tuple[str, Optional[str]]:
    """Polls ``fetch() -> (run state, {task: state}, error)`` until a final state; returns (state, error).

    Prints one line per change of the run's state or of a task's state, with the elapsed time.

    Raises:
        TimeoutError: the run was not finished after ``timeout`` seconds.
    """
    start = clock()
    seen_state: Optional[str] = None
    seen_tasks: Dict[str, str] = {}
    while True:
        state, tasks, error = fetch()
        elapsed = clock() - start
        stamp = f"[{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}]"
        if state != seen_state:
            done = sum(1 for s in tasks.values() if s.endswith("SUCCEEDED") or s.endswith("SKIPPED"))
            out(f"{stamp} run {state} ({done}/{len(tasks)} tasks done)")
            seen_state = state
        for task in sorted(tasks):
            if seen_tasks.get(task) != tasks[task]:
                out(f"{stamp}   {task}: {tasks[task]}")
        seen_tasks = dict(tasks)
        if state in final_states:
            return state, error
        if timeout is not None and elapsed >= timeout:
            raise TimeoutError(f"run still {state} after {int(elapsed)} s")
        time.sleep(poll_interval)
