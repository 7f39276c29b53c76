/**
 * The control tree's README: what the kernel's README is to tracefs (a mini-HOWTO read by
 * people and by ftracetest's 00basic/basic1.tc), written for the files this tree has.
 */
export const README_TEXT = `nftrace control tree mini-HOWTO

This is the tracefs of one Node.js process: the same files, read and written the same way.
Reach it through the path API (tracer.read/tracer.write), a FUSE mount (tracer.mount(DIR) or
'nftrace mount PID DIR'), or the control socket ('nftrace ctl PID PATH [VALUE]').

# echo 0 > tracing_on : stop recording (events are dropped, buffers kept)
# echo 1 > tracing_on : record again

 Files:
  README               - this text
  available_events     - every event, as SYSTEM:EVENT (Node's, probes', synthetic ones)
  available_tracers    - the tracers current_tracer takes: nop only (there is no
                         function tracer in a JavaScript process)
  current_tracer       - nop
  trace                - what the buffers hold, oldest first; 'echo > trace' clears them
  trace_pipe           - a consuming read: blocks until events come, each read once
  trace_marker         - text written here is recorded as an ftrace print event; text
                         longer than a sub-buffer is cut and the short count returned,
                         so 'echo' writes the rest as a further event
  tracing_on           - 1 records, 0 does not
  trace_clock          - local and mono (CLOCK_MONOTONIC in ns, as the kernel's mono), or
                         counter (a count shared by every thread)
  buffer_size_kb       - the size of each thread's buffer (per_cpu/cpuN: one thread's)
  buffer_subbuf_size_kb - the sub-buffer (page) size, 4 KiB by default
  buffer_total_size_kb - all threads' buffers together
  buffer_percent       - how full a buffer is before a blocked trace_pipe_raw reader wakes
  error_log            - the last errors of writes that explain themselves there
  set_event            - enabled events, one SYSTEM:EVENT a line; '!EVENT' disables
  snapshot             - echo 1 takes a snapshot (swaps in the spare buffer), 0 frees it,
                         2 clears it; reading prints it
  dynamic_events       - function probes: 'f:GROUP/EVENT MODULE:FUNCTION[%return] ARGS'
  synthetic_events     - events written by hist trigger actions: 'NAME FIELD; FIELD'
  fprobe_profile       - hits and failed fetches per probe
  instances/           - mkdir NAME makes an instance with buffers of its own, rmdir
                         removes it (EBUSY while one of its files is open)
  per_cpu/cpuN/        - thread N's buffer: trace, trace_pipe, trace_pipe_raw, stats,
                         snapshot, buffer_size_kb (thread 0 is the main thread)
  options/             - overwrite (0: producer/consumer, new events dropped when full),
                         irq-info, record-tgid, context-info
  events/              - one directory per system and event, made when looked up:
      enable           - 1/0 for the event, system or all; X when mixed
      filter           - a predicate: 'status >= 500 && path ~ "/api/*"'
      trigger          - traceon, traceoff, snapshot, stacktrace, enable_event,
                         disable_event, hist:keys=...:vals=...; with :N and 'if FILTER'
      format           - the record layout, in the kernel's format-file syntax
      id               - the event's id in trace.dat files
      hist             - a hist trigger's table

 The text of trace, trace_pipe and per_cpu files, format files, errnos and error_log lines
 follow the kernel's; see the project's docs/control-tree.md for where and why they differ.
`;
