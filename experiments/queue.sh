# The grid scripts' shared runner (sourced, not run). Each grid defines one(), which runs one line of its queue.
#   train_run DIR ARGS...   python -m train --output-dir DIR ARGS, its log in DIR.log; on failure says so, status 1
#   run_queue               the queue's lines on stdin, those matching ONLY=REGEX, JOBS at a time through one()

train_run() {
  local dir=$1; shift
  python -m train --output-dir "$dir" "$@" >"$dir.log" 2>&1 || { echo "FAILED $dir (see $dir.log)"; tail -5 "$dir.log"; return 1; }
}
export -f train_run

run_queue() {
  grep -E "${ONLY:-.}" | xargs -P "${JOBS:-4}" -L 1 bash -c 'one "$@"' _
}
