// Package procs adapts how many threads run Go code (GOMAXPROCS) to the
// daemon's load on a host where the runtime's default is two.
//
// On two CPUs, with initiators on the same machine, one P served small
// I/O and 1 MiB writes faster and with less CPU than two: a goroutine
// made ready (a command handed to a worker, a response to the writer)
// waits for the running one instead of waking a second thread, and each
// such wake-up cost a context switch on both sides. Large reads and many
// busy sessions went faster with two: the page-cache copy and the socket
// copy of a read, or the work of many connections, then run at the same
// time (README, Performance). Which is better depends on the load, and
// the load changes, so the Tuner decides from the Go scheduler's own
// measure: how long goroutines that were ready to run waited for a P
// (runtime/metrics /sched/latencies:seconds, which the runtime samples).
//
//   - At one P, when a quarter of the ready goroutines waited 100 µs or
//     more in two ticks (50 ms each) in a row, or half of them in one,
//     it moves to two.
//   - At two, after a hold (2 s at first) it probes: three ticks at one
//     P. If they show the same waits it goes back to two and doubles the
//     hold (up to 30 s); otherwise it stays at one.
//   - A tick in which the process used less than 5% of a CPU is idle:
//     at two it goes back to one, and the next load is judged afresh.
//
// Tuner is that state machine, without I/O, fed one Sample per tick; Run
// samples the runtime and getrusage(2) and applies the Tuner's choice
// with runtime.GOMAXPROCS. Nothing is tuned when GOMAXPROCS is set in the
// environment or the runtime's default is not two (larger hosts keep
// one P per CPU: measured only on two). While it tunes, the runtime no
// longer follows a container's CPU limit by itself (setting GOMAXPROCS
// stops that), so every 10 s Run applies the runtime's default
// (runtime.SetDefaultGOMAXPROCS): while that is not two (the limit or the
// CPU affinity changed) it leaves GOMAXPROCS to the runtime, which follows
// the limit again, and it tunes afresh once the default is back at two.
// When Run ends it hands the default back.
package procs
