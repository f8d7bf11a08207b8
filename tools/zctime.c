// SPDX-License-Identifier: GPL-2.0
/*
 * zctime: run a command and report what it cost, as one JSON object on
 * stderr: wall time, CPU time, page faults and exit status. `make bench`
 * runs the peers (the kernel's own selftest programs) through it, so that
 * their rows are measured the way zcsend and zcrecv measure themselves.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: zctime [--kill-after SECS] [--pty] [--] COMMAND [ARGS...]\n"
		"Run COMMAND and print one JSON object on stderr once it ends:\n"
		"  wall_s cpu_user_s cpu_sys_s page_faults ctx_switches ctx_preempted\n"
		"  (voluntary and involuntary context switches) status (the exit code,\n"
		"  or 128 + the signal) killed (true if zctime stopped it: after\n"
		"  --kill-after, or passing on a SIGTERM or SIGINT of its own)\n\n"
		"  -k, --kill-after SECS  send SIGTERM to COMMAND after SECS seconds\n"
		"  -t, --pty              give COMMAND a pseudo-terminal for its stdout,\n"
		"                         copied to zctime's: a program that prints with\n"
		"                         stdio then flushes each line, even if killed\n"
		"  -h, --help             this text\n\n"
		"Exit status: COMMAND's (0 if zctime stopped it), 2 bad arguments.\n");
}

static double tv(const struct timeval *t)
{
	return t->tv_sec + t->tv_usec / 1e6;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * SIGALRM (--kill-after), or a SIGTERM or SIGINT for zctime, stops the
 * child; SIGCHLD says it ended. All four stay blocked in zctime, which
 * takes them when it looks, so that none comes between a look and a wait.
 */
static sigset_t watched;
static bool stopped;

/* Take the signals pending, waiting for one up to @ms (-1: for ever). */
static void take_signals(pid_t pid, int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L };
	int sig;

	do {
		sig = ms < 0 ? sigwaitinfo(&watched, NULL) : sigtimedwait(&watched, NULL, &ts);
		if (sig > 0 && sig != SIGCHLD && !stopped) {
			kill(pid, SIGTERM);
			stopped = true;
		}
		ts.tv_nsec = 0;
		ms = 0;
	} while (sig > 0);
}

/* A pseudo-terminal for the child's stdout: returns the master's fd. */
static int open_pty(char **slave)
{
	int fd = posix_openpt(O_RDWR | O_NOCTTY);

	if (fd >= 0 && !grantpt(fd) && !unlockpt(fd))
		*slave = ptsname(fd);
	if (!*slave) {
		perror("zctime: pseudo-terminal");
		exit(1);
	}
	return fd;
}

/* In the child: the slave as stdout, passing bytes through as they are. */
static void use_pty(const char *slave, int master)
{
	struct termios t;
	int fd = open(slave, O_RDWR | O_NOCTTY);

	if (fd < 0 || tcgetattr(fd, &t)) {
		perror("zctime: pseudo-terminal");
		_exit(127);
	}
	t.c_oflag &= ~OPOST;
	tcsetattr(fd, TCSANOW, &t);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	close(master);
}

/*
 * Copy the child's terminal output until the slave is closed, or until the
 * child has ended and left nothing to read (a grandchild may hold it).
 */
static void copy_pty(int master, pid_t pid)
{
	struct pollfd p = { .fd = master, .events = POLLIN };
	char buf[4096];
	siginfo_t si;
	ssize_t n;
	int r;

	for (;;) {
		take_signals(pid, 0);
		r = poll(&p, 1, 100);
		if (r > 0) {
			n = read(master, buf, sizeof(buf));
			if (n <= 0 || write(STDOUT_FILENO, buf, n) != n)
				break;	/* EIO: the slave is closed */
			continue;
		}
		/* Ended? Peek only: main() reaps it, with its rusage. */
		memset(&si, 0, sizeof(si));
		if (!waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) && si.si_pid)
			break;
	}
	close(master);
}

int main(int argc, char **argv)
{
	unsigned int kill_after = 0;
	sigset_t unwatched;
	int master = -1;
	char *slave = NULL;
	bool pty = false;
	struct rusage ru;
	double start, end;
	int i = 1, status, code;
	pid_t pid, w;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--pty")) {
			pty = true;
		} else if ((!strcmp(argv[i], "-k") || !strcmp(argv[i], "--kill-after")) &&
			   i + 1 < argc) {
			char *end_p;

			kill_after = strtoul(argv[++i], &end_p, 10);
			if (*end_p || !kill_after) {
				fprintf(stderr, "zctime: --kill-after takes whole seconds > 0\n");
				return 2;
			}
		} else {
			fprintf(stderr, "zctime: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}

	if (pty)
		master = open_pty(&slave);
	/* Ignored, SIGCHLD would never come: the child would be reaped unseen. */
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&watched);
	sigaddset(&watched, SIGALRM);
	sigaddset(&watched, SIGTERM);
	sigaddset(&watched, SIGINT);
	sigaddset(&watched, SIGCHLD);
	sigprocmask(SIG_BLOCK, &watched, &unwatched);
	fflush(stdout);
	start = now();
	pid = fork();
	if (pid < 0) {
		perror("zctime: fork");
		return 1;
	}
	if (!pid) {
		sigprocmask(SIG_SETMASK, &unwatched, NULL);
		if (pty)
			use_pty(slave, master);
		execvp(argv[i], argv + i);
		fprintf(stderr, "zctime: %s: %s\n", argv[i], strerror(errno));
		_exit(127);
	}
	if (kill_after)
		alarm(kill_after);
	if (pty)
		copy_pty(master, pid);
	for (;;) {
		w = wait4(pid, &status, WNOHANG, &ru);
		if (w == pid)
			break;
		if (w < 0) {
			perror("zctime: wait4");
			return 1;
		}
		take_signals(pid, -1);
	}
	end = now();

	code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	fprintf(stderr,
		"{\"tool\": \"zctime\", \"command\": \"%s\", \"wall_s\": %.6f, "
		"\"cpu_user_s\": %.6f, \"cpu_sys_s\": %.6f, \"page_faults\": %ld, "
		"\"ctx_switches\": %ld, \"ctx_preempted\": %ld, "
		"\"status\": %d, \"killed\": %s}\n",
		argv[i], end - start, tv(&ru.ru_utime), tv(&ru.ru_stime),
		ru.ru_minflt + ru.ru_majflt, ru.ru_nvcsw, ru.ru_nivcsw, code,
		stopped ? "true" : "false");
	if (stopped && code == 128 + SIGTERM)
		return 0;
	return code;
}
