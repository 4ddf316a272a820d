/*
 * ambit-cni: Ambit's chained CNI plugin (CNI spec 0.3.0 to 1.1.0).
 *
 * The container runtime runs it after the node's primary network plugin, for every pod sandbox, before
 * any container of the pod starts. It hands the call to the node agent and otherwise changes nothing:
 * on ADD it prints the primary plugin's result (`prevResult`) byte for byte as it came on stdin.
 *
 * Why it exists: the node agent also enrolls pods from its API view, but that view lags the kubelet. A
 * pod whose first action is a connection would open it before the agent saw the pod, outside the mesh.
 * The CNI call is the one point at which the pod exists (its cgroup does) and nothing of it runs yet.
 *
 * Protocol (the agent's side is src/node-agent/redirection/cni-server.ts, shapes in src/api/cni.ts):
 *   POST /v1/cni over the agent's Unix socket (the conflist entry's "socket", default
 *   /var/run/ambit/cni.sock), HTTP/1.1, Connection: close, a JSON body
 *     {"command":"ADD","containerId":..,"netns":..,"ifname":..,"path":..,
 *      "args":{"K8S_POD_NAMESPACE":..,...every CNI_ARGS pair},"config":<stdin, verbatim>}
 *   200: done (the agent enrolled the pod, or the pod is not meshed). Anything else: the body is a CNI
 *   error object ({cniVersion, code, msg, details}) that this plugin prints as its own.
 *   Timeouts: CONNECT_TIMEOUT_MS to connect and write, RESPONSE_TIMEOUT_MS for the whole answer (the
 *   agent may wait a few seconds for the pod to reach the Kubernetes API).
 *
 * Excluded namespaces: the entry's "excludeNamespaces" (a list of names the agent writes, by default
 * kube-system and Ambit's own namespace) are passed through on ADD and CHECK without asking the agent,
 * in every case: the pods that bring a node (and the agent) back must never wait for the agent.
 *
 * When the agent cannot be reached (no socket, refused, timed out, a broken answer), ADD and CHECK
 * decide from the namespaces file beside the socket (`<dir of socket>/enrolled-namespaces`, which the
 * agent rewrites atomically whenever its view changes, and before it inserts this plugin into the
 * conflist). Its first line is the format's version, `ambit-cni-namespaces v2`; then one namespace per
 * line: every enrolled namespace, and every namespace in which a pod the agent knows (its node's pods)
 * opts in by its own `ambit.dev/dataplane-mode=ambient` label.
 *   - the pod's namespace (K8S_POD_NAMESPACE) is listed: fail closed, CNI error 11 (try again later).
 *     The runtime tears the sandbox down and the kubelet retries with back-off; the pod starts once the
 *     agent answers, so none of its connections leaves unredirected.
 *   - it is not listed: the pod is not meshed; pass prevResult through (fail open).
 *   - the file cannot be read, or is not in the version above (a reboot emptied /var/run before the
 *     agent came back; an agent of another version): the plugin cannot tell, so it fails closed for
 *     every Kubernetes pod outside the excluded namespaces until the agent is back.
 *   - a call without K8S_POD_NAMESPACE is not a Kubernetes pod: passed through.
 * A pod opted out by label in a listed namespace also waits: the file lists namespaces only.
 * The window that remains: a pod that opts in by its own label, in a namespace that is not enrolled and
 * in which the agent never saw an opted-in pod on this node, started while the agent is unreachable,
 * starts outside the mesh (the plugin has nothing to tell it apart from its neighbours). The agent's
 * reconcile enrolls it once the agent is back, but connections opened before that are not redirected.
 * Enroll the namespace instead of single pods where that matters.
 * DEL never fails for an unreachable agent (the agent unenrolls pods whose cgroup is gone by itself);
 * the agent unenrolls on a DEL only when its containerId is the sandbox that enrolled the pod.
 * STATUS always succeeds (Ambit never marks the node's network not ready: enrolled pods wait at ADD
 * instead); GC has nothing to collect (the agent reconciles enrollment from the cgroup tree).
 *
 * Built static (`clang -static -Os`, see the Makefile) because nodes have no Node.js and maybe not the
 * same libc; the node agent copies it to the CNI bin dir (--cni-bin-dir).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_STDIN (1 << 20)
#define MAX_RESPONSE (1 << 20)
#define CONNECT_TIMEOUT_MS 2000
#define RESPONSE_TIMEOUT_MS 15000
#define DEFAULT_SOCKET "/var/run/ambit/cni.sock"
#define NAMESPACES_FILE "enrolled-namespaces"
#define NAMESPACES_HEADER "ambit-cni-namespaces v2"
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
/* connect() on a Unix socket whose listen backlog is full fails with EAGAIN: retried this often. */
#define CONNECT_TRIES 20
#define CONNECT_RETRY_MS 50
#define MAX_EXCLUDED 64
#define API_PATH "/v1/cni"

/* CNI spec error codes. */
enum {
  ERR_INCOMPATIBLE_VERSION = 1,
  ERR_INVALID_ENV = 4,
  ERR_IO = 5,
  ERR_DECODE = 6,
  ERR_INVALID_CONFIG = 7,
  ERR_TRY_AGAIN_LATER = 11,
};

static const char *const SUPPORTED[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", NULL};
/* The version errors are written in: the config's, once it is known to be one of ours. */
static const char *out_version = "1.1.0";

/* ---- growable buffer ---------------------------------------------------------------------------- */

struct buf {
  char *p;
  size_t len, cap;
};

static void buf_put(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap == 0 ? 1024 : b->cap;
    while (b->len + n + 1 > cap) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      fputs("ambit-cni: out of memory\n", stderr);
      exit(2);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s) { buf_put(b, s, strlen(s)); }

/* Appends s as a JSON string literal (quotes included). */
static void buf_json_string(struct buf *b, const char *s) {
  buf_put(b, "\"", 1);
  for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
    char esc[8];
    switch (*c) {
      case '"': buf_put(b, "\\\"", 2); break;
      case '\\': buf_put(b, "\\\\", 2); break;
      case '\n': buf_put(b, "\\n", 2); break;
      case '\r': buf_put(b, "\\r", 2); break;
      case '\t': buf_put(b, "\\t", 2); break;
      default:
        if (*c < 0x20) {
          snprintf(esc, sizeof esc, "\\u%04x", *c);
          buf_put(b, esc, 6);
        } else {
          buf_put(b, (const char *)c, 1);
        }
    }
  }
  buf_put(b, "\"", 1);
}

/* ---- CNI results ---------------------------------------------------------------------------------- */

/* Prints a CNI error object on stdout and exits non-zero, as the spec asks. */
static void __attribute__((noreturn, format(printf, 3, 4)))
fail(int code, const char *details, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  struct buf b = {0};
  buf_str(&b, "{\"cniVersion\":");
  buf_json_string(&b, out_version);
  char num[32];
  snprintf(num, sizeof num, ",\"code\":%d,\"msg\":", code);
  buf_str(&b, num);
  buf_json_string(&b, msg);
  buf_str(&b, ",\"details\":");
  buf_json_string(&b, details == NULL ? "" : details);
  buf_str(&b, "}\n");
  fwrite(b.p, 1, b.len, stdout);
  fflush(stdout);
  fprintf(stderr, "ambit-cni: %s%s%s\n", msg, details != NULL && *details ? ": " : "", details ? details : "");
  exit(1);
}

/* ---- a small JSON reader: validates the whole document, keeps spans of the keys we need -------------- */

struct json {
  const char *s;
  size_t n, pos;
  char err[256];
};

struct span {
  size_t start, end; /* end == 0: absent */
};

static int jerr(struct json *j, const char *what) {
  if (j->pos >= j->n)
    snprintf(j->err, sizeof j->err, "%s at the end of the input (byte %zu): is it cut short?", what, j->pos);
  else
    snprintf(j->err, sizeof j->err, "%s at byte %zu (found '%c')", what, j->pos, j->s[j->pos]);
  return -1;
}

static void ws(struct json *j) {
  while (j->pos < j->n && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' || j->s[j->pos] == '\n' ||
                           j->s[j->pos] == '\r'))
    j->pos++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A string at j->pos; decoded into out (NUL-terminated, truncated to cap) when out is not NULL. */
static int jstring(struct json *j, char *out, size_t cap) {
  size_t o = 0;
  if (j->pos >= j->n || j->s[j->pos] != '"') return jerr(j, "expected a string");
  j->pos++;
  for (;;) {
    if (j->pos >= j->n) return jerr(j, "unterminated string");
    unsigned char c = (unsigned char)j->s[j->pos];
    if (c == '"') {
      j->pos++;
      break;
    }
    if (c < 0x20) return jerr(j, "control character in a string");
    char d = (char)c;
    if (c == '\\') {
      j->pos++;
      if (j->pos >= j->n) return jerr(j, "unterminated string");
      switch (j->s[j->pos]) {
        case '"': d = '"'; break;
        case '\\': d = '\\'; break;
        case '/': d = '/'; break;
        case 'b': d = '\b'; break;
        case 'f': d = '\f'; break;
        case 'n': d = '\n'; break;
        case 'r': d = '\r'; break;
        case 't': d = '\t'; break;
        case 'u': {
          int v = 0;
          for (int i = 1; i <= 4; i++) {
            int h = j->pos + i < j->n ? hexval(j->s[j->pos + i]) : -1;
            if (h < 0) return jerr(j, "bad \\u escape in a string");
            v = v * 16 + h;
          }
          j->pos += 4;
          d = v < 0x80 ? (char)v : '?'; /* the values we read are ASCII names and paths */
          break;
        }
        default: return jerr(j, "bad escape in a string");
      }
    }
    if (out != NULL && o + 1 < cap) out[o++] = d;
    j->pos++;
  }
  if (out != NULL) out[o] = '\0';
  return 0;
}

static int jvalue(struct json *j, int depth);

static int jliteral(struct json *j, const char *word) {
  size_t len = strlen(word);
  if (j->n - j->pos < len || memcmp(j->s + j->pos, word, len) != 0) return jerr(j, "unexpected character");
  j->pos += len;
  return 0;
}

static int jnumber(struct json *j) {
  size_t start = j->pos;
  if (j->pos < j->n && j->s[j->pos] == '-') j->pos++;
  size_t digits = j->pos;
  while (j->pos < j->n && j->s[j->pos] >= '0' && j->s[j->pos] <= '9') j->pos++;
  if (j->pos == digits) return jerr(j, "bad number");
  if (j->pos < j->n && j->s[j->pos] == '.') {
    j->pos++;
    size_t f = j->pos;
    while (j->pos < j->n && j->s[j->pos] >= '0' && j->s[j->pos] <= '9') j->pos++;
    if (j->pos == f) return jerr(j, "bad number");
  }
  if (j->pos < j->n && (j->s[j->pos] == 'e' || j->s[j->pos] == 'E')) {
    j->pos++;
    if (j->pos < j->n && (j->s[j->pos] == '+' || j->s[j->pos] == '-')) j->pos++;
    size_t e = j->pos;
    while (j->pos < j->n && j->s[j->pos] >= '0' && j->s[j->pos] <= '9') j->pos++;
    if (j->pos == e) return jerr(j, "bad number");
  }
  (void)start;
  return 0;
}

static int jcontainer(struct json *j, int depth, char close) {
  j->pos++;
  ws(j);
  if (j->pos < j->n && j->s[j->pos] == close) {
    j->pos++;
    return 0;
  }
  for (;;) {
    ws(j);
    if (close == '}') {
      if (jstring(j, NULL, 0) < 0) return jerr(j, "expected a member name (a string)");
      ws(j);
      if (j->pos >= j->n || j->s[j->pos] != ':') return jerr(j, "expected ':' after a member name");
      j->pos++;
    }
    if (jvalue(j, depth + 1) < 0) return -1;
    ws(j);
    if (j->pos < j->n && j->s[j->pos] == ',') {
      j->pos++;
      continue;
    }
    if (j->pos < j->n && j->s[j->pos] == close) {
      j->pos++;
      return 0;
    }
    return jerr(j, close == '}' ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array");
  }
}

static int jvalue(struct json *j, int depth) {
  if (depth > 64) return jerr(j, "nested too deep");
  ws(j);
  if (j->pos >= j->n) return jerr(j, "expected a value");
  switch (j->s[j->pos]) {
    case '{': return jcontainer(j, depth, '}');
    case '[': return jcontainer(j, depth, ']');
    case '"': return jstring(j, NULL, 0);
    case 't': return jliteral(j, "true");
    case 'f': return jliteral(j, "false");
    case 'n': return jliteral(j, "null");
    default:
      if (j->s[j->pos] == '-' || (j->s[j->pos] >= '0' && j->s[j->pos] <= '9')) return jnumber(j);
      return jerr(j, "expected a value");
  }
}

struct netconf {
  char cni_version[32];
  char name[256];
  char socket[4096];
  char excluded[MAX_EXCLUDED][256];
  int n_excluded;
  struct span prev_result;
  int has_version;
};

/* "excludeNamespaces": an array of strings. */
static int parse_excluded(struct json *j, struct netconf *c) {
  if (j->pos >= j->n || j->s[j->pos] != '[') {
    snprintf(j->err, sizeof j->err, "\"excludeNamespaces\" must be an array of strings (byte %zu)", j->pos);
    return -1;
  }
  j->pos++;
  ws(j);
  if (j->pos < j->n && j->s[j->pos] == ']') {
    j->pos++;
    return 0;
  }
  for (;;) {
    ws(j);
    if (c->n_excluded >= MAX_EXCLUDED) {
      snprintf(j->err, sizeof j->err, "\"excludeNamespaces\" has more than %d names", MAX_EXCLUDED);
      return -1;
    }
    if (j->pos >= j->n || j->s[j->pos] != '"') {
      snprintf(j->err, sizeof j->err, "\"excludeNamespaces\" must be an array of strings (byte %zu)", j->pos);
      return -1;
    }
    if (jstring(j, c->excluded[c->n_excluded], sizeof c->excluded[0]) < 0) return -1;
    c->n_excluded++;
    ws(j);
    if (j->pos < j->n && j->s[j->pos] == ',') {
      j->pos++;
      continue;
    }
    if (j->pos < j->n && j->s[j->pos] == ']') {
      j->pos++;
      return 0;
    }
    return jerr(j, "expected ',' or ']' in an array");
  }
}

/* Reads the network config: one JSON object; keeps cniVersion, name, socket and the prevResult span. */
static int parse_netconf(struct json *j, struct netconf *c) {
  memset(c, 0, sizeof *c);
  ws(j);
  if (j->pos >= j->n || j->s[j->pos] != '{') return jerr(j, "expected a JSON object");
  j->pos++;
  ws(j);
  if (j->pos < j->n && j->s[j->pos] == '}') {
    j->pos++;
  } else {
    for (;;) {
      char key[64];
      ws(j);
      if (jstring(j, key, sizeof key) < 0) return jerr(j, "expected a member name (a string)");
      ws(j);
      if (j->pos >= j->n || j->s[j->pos] != ':') return jerr(j, "expected ':' after a member name");
      j->pos++;
      ws(j);
      size_t start = j->pos;
      char *into = NULL;
      size_t cap = 0;
      if (strcmp(key, "cniVersion") == 0) into = c->cni_version, cap = sizeof c->cni_version;
      else if (strcmp(key, "name") == 0) into = c->name, cap = sizeof c->name;
      else if (strcmp(key, "socket") == 0) into = c->socket, cap = sizeof c->socket;
      if (strcmp(key, "excludeNamespaces") == 0) {
        if (parse_excluded(j, c) < 0) return -1;
      } else if (into != NULL) {
        if (j->pos >= j->n || j->s[j->pos] != '"') {
          snprintf(j->err, sizeof j->err, "\"%s\" must be a string (byte %zu)", key, j->pos);
          return -1;
        }
        if (jstring(j, into, cap) < 0) return -1;
        if (into == c->cni_version) c->has_version = 1;
      } else if (jvalue(j, 1) < 0) {
        return -1;
      }
      if (strcmp(key, "prevResult") == 0) {
        c->prev_result.start = start;
        c->prev_result.end = j->pos;
      }
      ws(j);
      if (j->pos < j->n && j->s[j->pos] == ',') {
        j->pos++;
        continue;
      }
      if (j->pos < j->n && j->s[j->pos] == '}') {
        j->pos++;
        break;
      }
      return jerr(j, "expected ',' or '}' in an object");
    }
  }
  ws(j);
  if (j->pos != j->n) return jerr(j, "unexpected data after the JSON object");
  return 0;
}

/* ---- talking to the agent -------------------------------------------------------------------------- */

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Waits until fd is ready for `events` or the deadline passes. 0 ready, -1 timed out or failed. */
static int wait_fd(int fd, short events, long deadline) {
  for (;;) {
    long left = deadline - now_ms();
    if (left <= 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, (int)left);
    if (r > 0) return 0;
    if (r == 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    if (errno != EINTR) return -1;
  }
}

struct answer {
  int status;
  struct buf body;
};

/*
 * One POST to the agent. Returns 0 with the HTTP status and body, or -1 with `why` set when the agent
 * could not be reached or gave no complete answer in time.
 */
static int post(const char *socket_path, const struct buf *req, struct answer *a, char *why, size_t whylen) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(socket_path) >= sizeof addr.sun_path) {
    snprintf(why, whylen, "socket path %s is too long", socket_path);
    return -1;
  }
  strcpy(addr.sun_path, socket_path);
  long deadline = now_ms() + CONNECT_TIMEOUT_MS;
  int fd = -1, rc = -1;
  for (int attempt = 1;; attempt++) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      snprintf(why, whylen, "socket: %s", strerror(errno));
      return -1;
    }
    rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    if (rc == 0 || errno != EAGAIN) break;
    /* EAGAIN on a Unix socket: the agent's listen backlog is full, nothing is in progress. Retry. */
    close(fd);
    if (attempt >= CONNECT_TRIES || now_ms() + CONNECT_RETRY_MS > deadline) {
      snprintf(why, whylen, "connect %s: the agent's listen backlog stayed full (%d tries): %s", socket_path,
               attempt, strerror(EAGAIN));
      return -1;
    }
    struct timespec pause = {.tv_sec = 0, .tv_nsec = CONNECT_RETRY_MS * 1000000L};
    nanosleep(&pause, NULL);
  }
  if (rc < 0) {
    int ok = 0;
    if (errno == EINPROGRESS) {
      int soerr = 0;
      socklen_t l = sizeof soerr;
      if (wait_fd(fd, POLLOUT, deadline) == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l) == 0 &&
          soerr == 0)
        ok = 1;
      else if (soerr != 0)
        errno = soerr;
    }
    if (!ok) {
      snprintf(why, whylen, "connect %s: %s", socket_path, strerror(errno));
      close(fd);
      return -1;
    }
  }
  struct buf head = {0};
  char line[128];
  buf_str(&head, "POST " API_PATH " HTTP/1.1\r\nHost: ambit-node-agent\r\nContent-Type: application/json\r\n");
  snprintf(line, sizeof line, "Content-Length: %zu\r\nConnection: close\r\n\r\n", req->len);
  buf_str(&head, line);
  buf_put(&head, req->p, req->len);
  for (size_t off = 0; off < head.len;) {
    ssize_t w = send(fd, head.p + off, head.len - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += (size_t)w;
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EINTR) && wait_fd(fd, POLLOUT, deadline) == 0) continue;
    snprintf(why, whylen, "sending to %s: %s", socket_path, strerror(errno));
    free(head.p);
    close(fd);
    return -1;
  }
  free(head.p);
  struct buf in = {0};
  deadline = now_ms() + RESPONSE_TIMEOUT_MS;
  for (;;) {
    char chunk[4096];
    ssize_t r = recv(fd, chunk, sizeof chunk, 0);
    if (r > 0) {
      if (in.len + (size_t)r > MAX_RESPONSE) {
        snprintf(why, whylen, "the answer from %s is over %d bytes", socket_path, MAX_RESPONSE);
        goto broken;
      }
      buf_put(&in, chunk, (size_t)r);
      continue;
    }
    if (r == 0) break;
    if ((errno == EAGAIN || errno == EINTR) && wait_fd(fd, POLLIN, deadline) == 0) continue;
    snprintf(why, whylen, "no answer from %s within %d ms: %s", socket_path, RESPONSE_TIMEOUT_MS,
             strerror(errno));
    goto broken;
  }
  close(fd);
  int status = 0;
  char *end = in.p == NULL ? NULL : strstr(in.p, "\r\n\r\n");
  if (end == NULL || sscanf(in.p, "HTTP/1.%*d %d", &status) != 1) {
    snprintf(why, whylen, "%s answered something that is not HTTP", socket_path);
    free(in.p);
    return -1;
  }
  a->status = status;
  a->body = (struct buf){0};
  buf_str(&a->body, end + 4);
  free(in.p);
  return 0;
broken:
  free(in.p);
  close(fd);
  return -1;
}

/* 1: listed, 0: not listed, -1: the file cannot be read or is not in our format (NAMESPACES_HEADER). */
static int namespace_enrolled(const char *file, const char *ns) {
  FILE *f = fopen(file, "re");
  if (f == NULL) return -1;
  char line[512];
  int found = 0;
  if (fgets(line, sizeof line, f) == NULL || (line[strcspn(line, "\r\n")] = '\0', strcmp(line, NAMESPACES_HEADER) != 0)) {
    fclose(f);
    return -1;
  }
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\r\n")] = '\0';
    if (strcmp(line, ns) == 0) {
      found = 1;
      break;
    }
  }
  fclose(f);
  return found;
}

/* ---- main ------------------------------------------------------------------------------------------ */

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v == NULL ? "" : v;
}

static void require_env(const char *name) {
  if (*env(name) == '\0') fail(ERR_INVALID_ENV, NULL, "%s is not set (the runtime must set it for %s)", name, env("CNI_COMMAND"));
}

/* K8S_POD_NAMESPACE and friends, from CNI_ARGS ("K=V;K=V"), into value ("" when absent). */
static const char *cni_arg(const char *key, char value[static 256]) {
  const char *args = env("CNI_ARGS");
  size_t klen = strlen(key);
  for (const char *p = args; *p != '\0';) {
    const char *semi = strchr(p, ';');
    size_t len = semi == NULL ? strlen(p) : (size_t)(semi - p);
    if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
      size_t vlen = len - klen - 1;
      if (vlen >= 256) vlen = 255;
      memcpy(value, p + klen + 1, vlen);
      value[vlen] = '\0';
      return value;
    }
    p += len;
    if (*p == ';') p++;
  }
  value[0] = '\0';
  return value;
}

static void json_args(struct buf *b) {
  buf_str(b, "{");
  const char *args = env("CNI_ARGS");
  int first = 1;
  for (const char *p = args; *p != '\0';) {
    const char *semi = strchr(p, ';');
    size_t len = semi == NULL ? strlen(p) : (size_t)(semi - p);
    const char *eq = memchr(p, '=', len);
    if (eq != NULL) {
      char *k = strndup(p, (size_t)(eq - p));
      char *v = strndup(eq + 1, len - (size_t)(eq - p) - 1);
      if (!first) buf_str(b, ",");
      first = 0;
      buf_json_string(b, k);
      buf_str(b, ":");
      buf_json_string(b, v);
      free(k);
      free(v);
    }
    p += len;
    if (*p == ';') p++;
  }
  buf_str(b, "}");
}

static void print_version(void) {
  fputs("{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[", stdout);
  for (int i = 0; SUPPORTED[i] != NULL; i++) printf("%s\"%s\"", i == 0 ? "" : ",", SUPPORTED[i]);
  fputs("]}\n", stdout);
}

int main(void) {
  const char *cmd = env("CNI_COMMAND");
  int add = strcmp(cmd, "ADD") == 0, del = strcmp(cmd, "DEL") == 0, check = strcmp(cmd, "CHECK") == 0;
  int status = strcmp(cmd, "STATUS") == 0, gc = strcmp(cmd, "GC") == 0, version = strcmp(cmd, "VERSION") == 0;
  if (!add && !del && !check && !status && !gc && !version)
    fail(ERR_INVALID_ENV, NULL, "CNI_COMMAND \"%s\" is not one of ADD, DEL, CHECK, STATUS, GC, VERSION", cmd);

  struct buf in = {0};
  for (;;) {
    char chunk[8192];
    ssize_t r = read(0, chunk, sizeof chunk);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      if (version) break;
      fail(ERR_IO, strerror(errno), "cannot read the network config on stdin");
    }
    if (version) continue;
    if (in.len + (size_t)r > MAX_STDIN) fail(ERR_DECODE, NULL, "the network config on stdin is over %d bytes", MAX_STDIN);
    buf_put(&in, chunk, (size_t)r);
  }
  /* VERSION's stdin ({"cniVersion": ...}) is read, so that the runtime can write it, and not needed. */
  if (version) {
    print_version();
    return 0;
  }
  struct json j = {.s = in.p == NULL ? "" : in.p, .n = in.len};
  struct netconf conf;
  if (parse_netconf(&j, &conf) < 0) fail(ERR_DECODE, j.err, "the network config on stdin is not valid JSON");
  if (!conf.has_version) fail(ERR_INVALID_CONFIG, NULL, "the network config has no cniVersion");
  int known = 0;
  for (int i = 0; SUPPORTED[i] != NULL; i++) known |= strcmp(SUPPORTED[i], conf.cni_version) == 0;
  if (!known)
    fail(ERR_INCOMPATIBLE_VERSION, "supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0",
         "cniVersion \"%s\" is not supported by ambit-cni", conf.cni_version);
  out_version = conf.cni_version;
  /* STATUS: always available (see the top). GC: the agent collects by itself. */
  if (status || gc) return 0;

  require_env("CNI_CONTAINERID");
  require_env("CNI_IFNAME");
  if (!del) require_env("CNI_NETNS");
  if ((add || check) && conf.prev_result.end == 0)
    fail(ERR_INVALID_CONFIG, NULL,
         "no prevResult in the network config: ambit-cni is a chained plugin and must come after the "
         "primary network plugin in the conflist");

  const char *socket_path = *conf.socket != '\0' ? conf.socket : DEFAULT_SOCKET;
  if (strlen(socket_path) > SUN_PATH_MAX)
    fail(ERR_INVALID_CONFIG, socket_path,
         "the \"socket\" path is %zu bytes long; a Unix socket path is at most %zu bytes", strlen(socket_path),
         SUN_PATH_MAX);
  struct buf req = {0};
  buf_str(&req, "{\"command\":");
  buf_json_string(&req, cmd);
  buf_str(&req, ",\"containerId\":");
  buf_json_string(&req, env("CNI_CONTAINERID"));
  buf_str(&req, ",\"netns\":");
  buf_json_string(&req, env("CNI_NETNS"));
  buf_str(&req, ",\"ifname\":");
  buf_json_string(&req, env("CNI_IFNAME"));
  buf_str(&req, ",\"path\":");
  buf_json_string(&req, env("CNI_PATH"));
  buf_str(&req, ",\"args\":");
  json_args(&req);
  buf_str(&req, ",\"config\":");
  buf_put(&req, in.p, in.len);
  buf_str(&req, "}");

  struct answer a;
  char why[512];
  char ns_buf[256], name_buf[256], pod[520];
  const char *ns = cni_arg("K8S_POD_NAMESPACE", ns_buf);
  snprintf(pod, sizeof pod, "%s/%s", ns, cni_arg("K8S_POD_NAME", name_buf));
  for (int i = 0; (add || check) && *ns != '\0' && i < conf.n_excluded; i++) {
    if (strcmp(conf.excluded[i], ns) != 0) continue;
    fprintf(stderr, "ambit-cni: %s %s: namespace %s is excluded (excludeNamespaces); passing\n", cmd, pod, ns);
    if (add) fwrite(in.p + conf.prev_result.start, 1, conf.prev_result.end - conf.prev_result.start, stdout);
    return 0;
  }
  if (post(socket_path, &req, &a, why, sizeof why) < 0) {
    if (del) {
      fprintf(stderr, "ambit-cni: DEL of %s: node agent unreachable (%s); it unenrolls gone pods itself\n", pod, why);
      return 0;
    }
    if (*ns != '\0') {
      char file[sizeof conf.socket + sizeof NAMESPACES_FILE + 1];
      const char *slash = strrchr(socket_path, '/');
      int dirlen = slash == NULL ? 1 : (int)(slash - socket_path);
      snprintf(file, sizeof file, "%.*s/%s", dirlen, slash == NULL ? "." : socket_path, NAMESPACES_FILE);
      int enrolled = namespace_enrolled(file, ns);
      if (enrolled == 1)
        fail(ERR_TRY_AGAIN_LATER, why,
             "the Ambit node agent is unreachable and pod %s is in enrolled namespace %s: it must not start "
             "outside the mesh; retry once the agent is back",
             pod, ns);
      if (enrolled < 0)
        fail(ERR_TRY_AGAIN_LATER, why,
             "the Ambit node agent is unreachable and its list of enrolled namespaces (%s) cannot be read "
             "(or is not in format " NAMESPACES_HEADER "), "
             "so pod %s may belong in the mesh; retry once the agent is back",
             file, pod);
    }
    fprintf(stderr, "ambit-cni: %s %s: node agent unreachable (%s); the namespace is not enrolled, passing\n", cmd,
            pod, why);
  } else if (a.status != 200) {
    const char *b = a.body.p == NULL ? "" : a.body.p;
    if (*b == '{') {
      fputs(b, stdout);
      fputs("\n", stdout);
      fprintf(stderr, "ambit-cni: %s %s: the node agent refused (HTTP %d): %s\n", cmd, pod, a.status, b);
      return 1;
    }
    fail(ERR_TRY_AGAIN_LATER, b, "the Ambit node agent answered HTTP %d for %s %s", a.status, cmd, pod);
  }
  if (add) fwrite(in.p + conf.prev_result.start, 1, conf.prev_result.end - conf.prev_result.start, stdout);
  return 0;
}
