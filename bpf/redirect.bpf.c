// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Ambit outbound redirection.
 *
 * Attached (as bpf_links) to the cgroup under which a node's pods live. For a TCP connect() from a pod
 * whose cgroup is enrolled, `connect4`/`connect6` rewrite the destination address to the node proxy's
 * address and remember the original destination under the socket cookie. The source port is not
 * known yet at that point; `sockops` sees it at TCP_CONNECT_CB and re-keys the record by the socket's
 * (source address, source port), which is what the proxy sees as the peer of the accepted connection.
 * The proxy looks that key up (and deletes it) once per connection.
 *
 * The destination port is kept: `sk_lookup`, attached to the node's network namespace, hands a SYN for
 * any port of the proxy address to the proxy's one outbound listener. Rewriting every connect() to a
 * single address:port would squeeze all of a pod's connections into one 4-tuple space, and the
 * TIME_WAIT sockets of a busy client exhaust its ephemeral ports (measured: connect() at 4 ms each after
 * 14k connections); keeping the port gives each destination port its own space, as without the mesh.
 *
 * Loop avoidance is by construction: the programs run only for sockets of cgroups below the attach
 * point, the node proxy runs outside it, and a connection that already targets the proxy is left alone.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* From <sys/socket.h>, which cannot be included for the BPF target. */
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1

#define MAX_EXCLUDED_PORTS 16
#define MAX_EXCLUDED_CIDRS 8
#define MAX_ANCESTOR_PROBES 3

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Tests build a variant with different instructions and the same maps, to exercise in-place upgrades. */
#ifdef AMBIT_TEST_VARIANT
#define VARIANT() ((void)bpf_get_prandom_u32())
#else
#define VARIANT() ((void)0)
#endif

/* A 16-byte address: IPv6, or IPv4 in its IPv4-mapped form (::ffff:a.b.c.d). */
struct addr16 {
	__u32 w[4];
};

struct cidr {
	struct addr16 addr; /* network order; IPv4 mapped */
	__u32 prefix_len;   /* over the 128-bit mapped form: an IPv4 /24 is 96 + 24 */
};

/* Per enrolled pod (keyed by cgroup id). */
struct pod_config {
	__u32 flags;
	__u32 n_ports;
	__u32 n_cidrs;
	__u16 excluded_ports[MAX_EXCLUDED_PORTS]; /* host order */
	struct cidr excluded_cidrs[MAX_EXCLUDED_CIDRS];
	__u64 workload_id; /* which pod this cgroup is (a hash of its UID), copied into every record */
};

/* The node proxy (one entry). */
struct proxy_config {
	struct addr16 addr4;  /* IPv4 mapped */
	struct addr16 addr6;
	__u16 outbound_port;  /* host order */
	__u16 pad;
	__u32 pods_level;     /* cgroup level of the attach point, for ancestor lookups */
};

/* What the proxy reads back per connection. */
struct orig_dst {
	struct addr16 addr;
	__u16 port;           /* host order */
	__u16 family;         /* AF_INET or AF_INET6 of the original destination */
	__u32 pad;
	__u64 cgroup_id;      /* the enrolled cgroup the connection came from */
	__u64 workload_id;    /* the pod behind that cgroup: the proxy trusts this, not the source address */
};

struct tuple_key {
	struct addr16 addr;   /* source address as the proxy sees it (IPv4 mapped) */
	__u16 port;           /* source port, host order */
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct pod_config);
} ambit_pods SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct proxy_config);
} ambit_proxy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct orig_dst);
} ambit_by_cookie SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct tuple_key);
	__type(value, struct orig_dst);
} ambit_orig_dst SEC(".maps");

/* The proxy's outbound listeners: key 0 IPv4, key 1 IPv6 (filled by the proxy at start). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} ambit_proxy_socks SEC(".maps");

/* Counters for `ambit proxy-config`/tests: redirected, skipped (excluded), missed (no cookie entry). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} ambit_stats SEC(".maps");

enum { STAT_REDIRECTED = 0, STAT_EXCLUDED = 1, STAT_NO_COOKIE = 2, STAT_NOT_ENROLLED = 3 };

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&ambit_stats, &which);
	if (v)
		*v += 1;
}

static __always_inline struct pod_config *enrolled_pod(struct proxy_config *pc, __u64 *cgid)
{
	__u64 id = bpf_get_current_cgroup_id();
	struct pod_config *pod = bpf_map_lookup_elem(&ambit_pods, &id);
	if (pod) {
		*cgid = id;
		return pod;
	}
	/* Kubernetes puts containers in child cgroups of the pod cgroup: look a few levels below the attach point. */
	for (int i = 1; i <= MAX_ANCESTOR_PROBES; i++) {
		id = bpf_get_current_ancestor_cgroup_id(pc->pods_level + i);
		if (id == 0)
			break;
		pod = bpf_map_lookup_elem(&ambit_pods, &id);
		if (pod) {
			*cgid = id;
			return pod;
		}
	}
	return 0;
}

static __always_inline int in_cidr(const struct addr16 *a, const struct cidr *c)
{
	__u32 left = c->prefix_len;
	for (int i = 0; i < 4; i++) {
		if (left == 0)
			return 1;
		__u32 bits = left >= 32 ? 32 : left;
		__u32 mask = bits == 32 ? 0xffffffff : bpf_htonl(~((1U << (32 - bits)) - 1));
		if ((a->w[i] & mask) != (c->addr.w[i] & mask))
			return 0;
		left -= bits;
	}
	return 1;
}

static __always_inline int excluded(struct pod_config *pod, const struct addr16 *dst, __u16 port)
{
	__u32 n = pod->n_ports;
	for (int i = 0; i < MAX_EXCLUDED_PORTS; i++) {
		if (i >= n)
			break;
		if (pod->excluded_ports[i] == port)
			return 1;
	}
	n = pod->n_cidrs;
	for (int i = 0; i < MAX_EXCLUDED_CIDRS; i++) {
		if (i >= n)
			break;
		if (in_cidr(dst, &pod->excluded_cidrs[i]))
			return 1;
	}
	return 0;
}

static __always_inline int same_addr(const struct addr16 *a, const struct addr16 *b)
{
	return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] && a->w[3] == b->w[3];
}

/*
 * The shared decision: should this connect() go to the proxy? Fills `o` when it should.
 * `dst` is the destination in mapped form.
 */
static __always_inline struct proxy_config *decide(struct bpf_sock_addr *ctx, const struct addr16 *dst,
						   int loopback, __u16 family, struct orig_dst *o)
{
	if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return 0;
	__u32 zero = 0;
	struct proxy_config *pc = bpf_map_lookup_elem(&ambit_proxy, &zero);
	if (!pc || pc->outbound_port == 0)
		return 0;
	__u64 cgid = 0;
	struct pod_config *pod = enrolled_pod(pc, &cgid);
	if (!pod) {
		count(STAT_NOT_ENROLLED);
		return 0;
	}
	/* Traffic inside the pod, and traffic that already targets the proxy, is never touched. */
	if (loopback || same_addr(dst, &pc->addr4) || same_addr(dst, &pc->addr6))
		return 0;
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	if (excluded(pod, dst, port)) {
		count(STAT_EXCLUDED);
		return 0;
	}
	o->addr = *dst;
	o->port = port;
	o->family = family;
	o->cgroup_id = cgid;
	o->workload_id = pod->workload_id;
	return pc;
}

SEC("cgroup/connect4")
int ambit_connect4(struct bpf_sock_addr *ctx)
{
	VARIANT();
	struct addr16 dst = {};
	__u32 ip = ctx->user_ip4;
	dst.w[2] = bpf_htonl(0x0000ffff);
	dst.w[3] = ip;
	struct orig_dst o = {};
	struct proxy_config *pc = decide(ctx, &dst, (bpf_ntohl(ip) >> 24) == 127, AF_INET, &o);
	if (!pc)
		return 1;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	if (bpf_map_update_elem(&ambit_by_cookie, &cookie, &o, BPF_ANY) != 0)
		return 1; /* cannot record: leave the connection alone rather than lose its destination */
	ctx->user_ip4 = pc->addr4.w[3];
	count(STAT_REDIRECTED);
	return 1;
}

SEC("cgroup/connect6")
int ambit_connect6(struct bpf_sock_addr *ctx)
{
	VARIANT();
	struct addr16 dst = {};
	/* The verifier wants 4-byte context loads; volatile keeps clang from merging them. */
	dst.w[0] = ((volatile __u32 *)ctx->user_ip6)[0];
	dst.w[1] = ((volatile __u32 *)ctx->user_ip6)[1];
	dst.w[2] = ((volatile __u32 *)ctx->user_ip6)[2];
	dst.w[3] = ((volatile __u32 *)ctx->user_ip6)[3];
	int mapped = dst.w[0] == 0 && dst.w[1] == 0 && dst.w[2] == bpf_htonl(0x0000ffff);
	int loopback = (dst.w[0] == 0 && dst.w[1] == 0 && dst.w[2] == 0 && dst.w[3] == bpf_htonl(1)) ||
		       (mapped && (bpf_ntohl(dst.w[3]) >> 24) == 127);
	struct orig_dst o = {};
	struct proxy_config *pc = decide(ctx, &dst, loopback, mapped ? AF_INET : AF_INET6, &o);
	if (!pc)
		return 1;
	/*
	 * No IPv6 proxy address (an IPv4-only node): an IPv6 destination is left alone, as without the mesh
	 * (it has no route off the node). Never an IPv4-mapped stand-in: a V6ONLY socket cannot connect to
	 * one, and a dual-stack socket would be accepted by the IPv4 listener only to fail upstream.
	 */
	if (!mapped && pc->addr6.w[0] == 0 && pc->addr6.w[1] == 0 && pc->addr6.w[2] == 0 && pc->addr6.w[3] == 0)
		return 1;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	if (bpf_map_update_elem(&ambit_by_cookie, &cookie, &o, BPF_ANY) != 0)
		return 1;
	/* An IPv4-mapped destination stays IPv4: send it to the proxy's IPv4 listener, in mapped form. */
	const struct addr16 *to = mapped ? &pc->addr4 : &pc->addr6;
	__u32 w0 = to->w[0], w1 = to->w[1], w2 = to->w[2], w3 = to->w[3];
	((volatile __u32 *)ctx->user_ip6)[0] = w0;
	((volatile __u32 *)ctx->user_ip6)[1] = w1;
	((volatile __u32 *)ctx->user_ip6)[2] = w2;
	((volatile __u32 *)ctx->user_ip6)[3] = w3;
	count(STAT_REDIRECTED);
	return 1;
}

SEC("sockops")
int ambit_sockops(struct bpf_sock_ops *skops)
{
	VARIANT();
	if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
		return 1;
	__u64 cookie = bpf_get_socket_cookie(skops);
	struct orig_dst *o = bpf_map_lookup_elem(&ambit_by_cookie, &cookie);
	if (!o)
		return 1;
	/*
	 * Read every context field up front, unconditionally: if clang computes a context pointer in one
	 * branch and loads through it after the join, the verifier rejects the modified ctx pointer.
	 */
	__u32 family = skops->family;
	__u32 ip4 = skops->local_ip4;
	__u32 ip6_0 = skops->local_ip6[0];
	__u32 ip6_1 = skops->local_ip6[1];
	__u32 ip6_2 = skops->local_ip6[2];
	__u32 ip6_3 = skops->local_ip6[3];
	struct tuple_key key = {};
	if (family == AF_INET) {
		key.addr.w[2] = bpf_htonl(0x0000ffff);
		key.addr.w[3] = ip4;
	} else {
		key.addr.w[0] = ip6_0;
		key.addr.w[1] = ip6_1;
		key.addr.w[2] = ip6_2;
		key.addr.w[3] = ip6_3;
	}
	key.port = (__u16)skops->local_port; /* host order */
	struct orig_dst copy = *o;
	bpf_map_update_elem(&ambit_orig_dst, &key, &copy, BPF_ANY);
	bpf_map_delete_elem(&ambit_by_cookie, &cookie);
	return 1;
}

SEC("sk_lookup")
int ambit_sk_lookup(struct bpf_sk_lookup *ctx)
{
	VARIANT();
	if (ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	__u32 zero = 0;
	struct proxy_config *pc = bpf_map_lookup_elem(&ambit_proxy, &zero);
	if (!pc)
		return SK_PASS;
	__u32 family = ctx->family;
	__u32 l4 = ctx->local_ip4;
	__u32 l6_0 = ctx->local_ip6[0], l6_1 = ctx->local_ip6[1], l6_2 = ctx->local_ip6[2], l6_3 = ctx->local_ip6[3];
	__u32 key;
	if (family == AF_INET) {
		if (l4 != pc->addr4.w[3])
			return SK_PASS;
		key = 0;
	} else {
		if (l6_0 != pc->addr6.w[0] || l6_1 != pc->addr6.w[1] || l6_2 != pc->addr6.w[2] || l6_3 != pc->addr6.w[3])
			return SK_PASS;
		key = 1;
	}
	/* No listener (the proxy is down): fall through to the normal lookup, which finds nothing and
	 * resets the connection. Enrolled pods fail closed. */
	struct bpf_sock *sk = bpf_map_lookup_elem(&ambit_proxy_socks, &key);
	if (!sk)
		return SK_PASS;
	long err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return err == 0 ? SK_PASS : SK_DROP;
}
