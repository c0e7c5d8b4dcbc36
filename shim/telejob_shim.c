/*
 * telejob-shim: the one process between telejob-server and a job's command.
 *
 * The server spawns it as root with an EMPTY environment; being statically
 * linked, it loads no shared object, so LD_PRELOAD, LD_LIBRARY_PATH,
 * BASH_ENV, ENV and the like never run code here. In this order it:
 *
 *   1. points stdin at /dev/null and stdout and stderr at ONE append-mode fd
 *      on the job's output file (created 0600 when missing);
 *   2. writes its own pid into every cgroup.procs file given, so nothing of
 *      the job ever runs outside its limits;
 *   3. starts a new session (the job leads it);
 *   4. drops privileges: the capability bounding set (non-root), the
 *      supplementary groups, gid, uid, then every remaining capability, and
 *      sets no_new_privs so no setuid file or file capability gives them back;
 *   5. closes every fd above 2 (the server's leaks included);
 *   6. enters the working directory AS the job's identity, so that identity's
 *      permissions decide;
 *   7. execs the command with the job's environment, the first and only
 *      place that environment is used.
 *
 * The job keeps this process's pid: the server waits on the command itself.
 * Any failure before the exec writes one line starting "telejob-shim: " to
 * the output file and exits SHIM_FAILURE (125); the engine reports that as a
 * job that could not start, not as a command that exited 125.
 *
 * Usage (argv, all positional; no option parsing, nothing is interpreted):
 *   telejob-shim OUTPUT CWD UID GID GROUPS NPROCS PROCS... NENV ENV... COMMAND ARGS...
 * GROUPS is a comma-separated list of supplementary gids ("" for none).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SHIM_FAILURE 125
#define MAX_GROUPS 65536

static void fail(const char *format, ...) {
  char line[4096];
  va_list ap;
  va_start(ap, format);
  int n = vsnprintf(line, sizeof line, format, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof line) n = sizeof line - 1;
  /* fd 2 is the output file once step 1 succeeded, /dev/null before. */
  ssize_t ignored = write(2, "telejob-shim: ", 14);
  ignored = write(2, line, (size_t)n);
  ignored = write(2, "\n", 1);
  (void)ignored;
  _exit(SHIM_FAILURE);
}

static unsigned long parse_id(const char *what, const char *text) {
  char *end;
  errno = 0;
  unsigned long value = strtoul(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value > 0xfffffffeUL) {
    fail("invalid %s \"%s\" (a bug in telejob-server)", what, text);
  }
  return value;
}

static void redirect_stdio(const char *output) {
  int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in < 0 || dup2(in, 0) < 0) _exit(SHIM_FAILURE);
  if (in != 0) close(in);
  int out = open(output, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
                 0600);
  if (out < 0) _exit(SHIM_FAILURE); /* nowhere to say why */
  if (dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(SHIM_FAILURE);
  if (out > 2) close(out);
}

static void enter_cgroup(const char *procs) {
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  int fd = open(procs, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, pid, (size_t)n) != n) {
    fail("could not move the job into its cgroup (%s: %s); the command was "
         "not run",
         procs, strerror(errno));
  }
  close(fd);
}

static size_t parse_groups(const char *text, gid_t *groups) {
  size_t count = 0;
  const char *p = text;
  while (*p != '\0') {
    if (count == MAX_GROUPS) fail("too many supplementary groups");
    char *end;
    errno = 0;
    unsigned long value = strtoul(p, &end, 10);
    if (errno != 0 || end == p || (*end != ',' && *end != '\0') ||
        value > 0xfffffffeUL) {
      fail("invalid group list \"%s\" (a bug in telejob-server)", text);
    }
    groups[count++] = (gid_t)value;
    p = *end == ',' ? end + 1 : end;
  }
  return count;
}

static void drop_privileges(uid_t uid, gid_t gid, const char *group_list) {
  static gid_t groups[MAX_GROUPS];
  size_t count = parse_groups(group_list, groups);
  if (uid != 0) {
    /* A job that is not root keeps no capability, not even in the bounding
     * set it could otherwise regain through a file capability. */
    for (int cap = 0; cap <= 63; cap++) {
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL) break;
    }
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  }
  if (setgroups(count, groups) != 0) {
    fail("could not set the supplementary groups: %s", strerror(errno));
  }
  if (setgid(gid) != 0) fail("could not set gid %u: %s", gid, strerror(errno));
  if (setuid(uid) != 0) fail("could not set uid %u: %s", uid, strerror(errno));
  if (uid != 0) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) != 0) {
      fail("could not clear the capabilities: %s", strerror(errno));
    }
    /* Paranoia: the change must be irreversible. */
    if (setuid(0) == 0) fail("uid 0 could be regained; refusing to run");
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    fail("could not set no_new_privs: %s", strerror(errno));
  }
}

static void close_other_fds(void) {
  if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
  /* Kernels before 5.9: walk /proc/self/fd. */
  DIR *dir = opendir("/proc/self/fd");
  if (dir == NULL) fail("could not list open fds: %s", strerror(errno));
  int self = dirfd(dir);
  struct dirent *entry;
  while ((entry = readdir(dir)) != NULL) {
    int fd = atoi(entry->d_name);
    if (fd > 2 && fd != self) close(fd);
  }
  closedir(dir);
}

int main(int argc, char **argv) {
  if (argc < 9) {
    fail("usage: telejob-shim OUTPUT CWD UID GID GROUPS NPROCS PROCS... "
         "NENV ENV... COMMAND ARGS...");
  }
  redirect_stdio(argv[1]);
  const char *cwd = argv[2];
  uid_t uid = (uid_t)parse_id("uid", argv[3]);
  gid_t gid = (gid_t)parse_id("gid", argv[4]);
  const char *groups = argv[5];
  int i = 6;
  unsigned long procs = parse_id("procs count", argv[i++]);
  if (procs > (unsigned long)(argc - i)) fail("procs count exceeds arguments");
  for (unsigned long p = 0; p < procs; p++) enter_cgroup(argv[i++]);
  if (i >= argc) fail("env count missing");
  unsigned long envs = parse_id("env count", argv[i++]);
  if (envs >= (unsigned long)(argc - i)) fail("no command after the env");
  char **env = calloc(envs + 1, sizeof *env);
  if (env == NULL) fail("out of memory");
  for (unsigned long e = 0; e < envs; e++) env[e] = argv[i++];
  char **command = argv + i;

  if (setsid() < 0) fail("could not start a session: %s", strerror(errno));
  drop_privileges(uid, gid, groups);
  close_other_fds();
  if (chdir(cwd) != 0) {
    fail("cannot enter the working directory %s as uid %u: %s; the command "
         "was not run",
         cwd, uid, strerror(errno));
  }
  execve(command[0], command, env);
  fail("cannot run %s as uid %u: %s", command[0], uid, strerror(errno));
  return SHIM_FAILURE;
}
