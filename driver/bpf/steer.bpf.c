// SPDX-License-Identifier: GPL-2.0
// camblet-agent transparent-proxy steering (the user-space data plane, no kernel module).
//
// Outbound: cgroup/connect4 + connect6 send connections to protected destinations to the
// agent's outbound listener; sockops records the original destination and the client's
// tgid/uid/gid by the client's (address, port); getpeername4/6 hide the redirect from the app.
// Inbound: sk_lookup hands SYNs for protected local ports to the agent's listener (SOCKMAP).
// The agent's onward leg to the app (agent process + explicitly bound source) is never steered.
//
// Every address is kept as 16 bytes in network order, IPv4 as v4-mapped ::ffff:a.b.c.d, so
// one key shape serves both families. Build: driver/bpf/build.ts (clang -target bpf).
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define SOCK_STREAM 1 /* linux/socket.h lacks it */
#define AF_INET 2
#define AF_INET6 10
#define ALLOW 1

#define CFG_FAIL_CLOSED 1 /* inbound: refuse (SK_DROP) protected ports while no agent listens */

struct addr_port {
	__u32 addr[4]; /* network order; IPv4 as ::ffff:a.b.c.d */
	__u32 port;    /* host order; 0 in `protected` = every port */
};

struct orig_dst {
	struct addr_port dst;
	__u32 tgid;
	__u32 uid;
	__u32 gid;
	__u32 flags;
	__u64 cookie;
};

struct config {
	__u64 netns_cookie;   /* only sockets in the agent's netns; never 0 */
	__u32 agent_tgid;     /* the agent itself is never redirected */
	__u32 flags;          /* CFG_* */
	__u32 proxy_ip4;      /* outbound listener, network order (e.g. 127.0.0.1) */
	__u32 proxy_ip6[4];   /* outbound listener for real IPv6 (e.g. ::1); 0 = none */
	__u32 proxy_port;     /* host order */
};

enum stat {
	STAT_REDIRECTED = 0,  /* connect4/6 rewrote a destination */
	STAT_RECORDED,        /* sockops stored an original destination by client port */
	STAT_STEERED,         /* sk_lookup assigned a SYN to the agent */
	STAT_DROPPED,         /* sk_lookup dropped a SYN (fail-closed, no agent) */
	STAT_BYPASSED,        /* sk_lookup let the agent's onward leg through */
	STAT_PEERNAME,        /* getpeername restored the original destination */
	STAT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct addr_port);
	__type(value, __u8);
} protected SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* socket cookie of the app's socket */
	__type(value, struct orig_dst);
} orig_by_cookie SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct addr_port); /* the app socket's local address = proxy's remote */
	__type(value, struct orig_dst);
} orig_by_client SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* cookie of an agent socket that is an onward leg */
	__type(value, __u8);
} onward_cookies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct addr_port); /* local end of an onward leg */
	__type(value, __u64);
} onward_ends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* local port, host order */
	__type(value, __u8);
} inbound_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2); /* 0: IPv4 listener, 1: IPv6 listener */
	__type(key, __u32);
	__type(value, __u64);
} listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void bump(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &i);
	if (v)
		*v += 1;
}

static __always_inline struct config *get_config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&config, &zero);
}

static __always_inline void set_mapped(__u32 *addr, __u32 ip4)
{
	addr[0] = 0;
	addr[1] = 0;
	addr[2] = bpf_htonl(0x0000ffff);
	addr[3] = ip4;
}

static __always_inline int is_mapped(const __u32 *addr)
{
	return addr[0] == 0 && addr[1] == 0 && addr[2] == bpf_htonl(0x0000ffff);
}

static __always_inline int is_protected(struct addr_port *k)
{
	if (bpf_map_lookup_elem(&protected, k))
		return 1;
	struct addr_port any = *k;
	any.port = 0;
	return bpf_map_lookup_elem(&protected, &any) != 0;
}

// An agent connect from an explicitly bound source is an onward leg: remember its cookie so
// sockops can record its local end for sk_lookup to let through.
static __always_inline void mark_onward(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return;
	if (sk->src_ip4 == 0 && sk->src_ip6[0] == 0 && sk->src_ip6[1] == 0 &&
	    sk->src_ip6[2] == 0 && sk->src_ip6[3] == 0)
		return;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	__u8 one = 1;
	bpf_map_update_elem(&onward_cookies, &cookie, &one, BPF_ANY);
}

// Shared tail of connect4/connect6: returns 1 when the caller must rewrite to the proxy.
static __always_inline int should_redirect(struct bpf_sock_addr *ctx, struct config *cfg,
					   struct addr_port *k)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (tgid == cfg->agent_tgid) {
		mark_onward(ctx);
		return 0;
	}
	if (bpf_get_netns_cookie(ctx) != cfg->netns_cookie)
		return 0; /* another network namespace: not ours */
	if (!is_protected(k))
		return 0;
	__u64 ug = bpf_get_current_uid_gid();
	struct orig_dst o = {};
	o.dst = *k;
	o.tgid = tgid;
	o.uid = (__u32)ug;
	o.gid = ug >> 32;
	o.cookie = bpf_get_socket_cookie(ctx);
	bpf_map_update_elem(&orig_by_cookie, &o.cookie, &o, BPF_ANY);
	bump(STAT_REDIRECTED);
	return 1;
}

SEC("cgroup/connect4")
int camblet_connect4(struct bpf_sock_addr *ctx)
{
	if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return ALLOW;
	struct config *cfg = get_config();
	if (!cfg || cfg->netns_cookie == 0)
		return ALLOW;
	struct addr_port k = { .port = bpf_ntohs(ctx->user_port) };
	set_mapped(k.addr, ctx->user_ip4);
	if (!should_redirect(ctx, cfg, &k))
		return ALLOW;
	ctx->user_ip4 = cfg->proxy_ip4;
	ctx->user_port = bpf_htons(cfg->proxy_port);
	return ALLOW;
}

SEC("cgroup/connect6")
int camblet_connect6(struct bpf_sock_addr *ctx)
{
	if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return ALLOW;
	struct config *cfg = get_config();
	if (!cfg || cfg->netns_cookie == 0)
		return ALLOW;
	struct addr_port k = { .port = bpf_ntohs(ctx->user_port) };
	k.addr[0] = ctx->user_ip6[0];
	k.addr[1] = ctx->user_ip6[1];
	k.addr[2] = ctx->user_ip6[2];
	k.addr[3] = ctx->user_ip6[3];
	int mapped = is_mapped(k.addr);
	if (!mapped && cfg->proxy_ip6[0] == 0 && cfg->proxy_ip6[1] == 0 &&
	    cfg->proxy_ip6[2] == 0 && cfg->proxy_ip6[3] == 0)
		return ALLOW; /* no IPv6 listener to send it to */
	if (!should_redirect(ctx, cfg, &k))
		return ALLOW;
	if (mapped) {
		ctx->user_ip6[3] = cfg->proxy_ip4; /* stays v4-mapped */
	} else {
		ctx->user_ip6[0] = cfg->proxy_ip6[0];
		ctx->user_ip6[1] = cfg->proxy_ip6[1];
		ctx->user_ip6[2] = cfg->proxy_ip6[2];
		ctx->user_ip6[3] = cfg->proxy_ip6[3];
	}
	ctx->user_port = bpf_htons(cfg->proxy_port);
	return ALLOW;
}

SEC("cgroup/getpeername4")
int camblet_getpeername4(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct orig_dst *o = bpf_map_lookup_elem(&orig_by_cookie, &cookie);
	if (!o)
		return ALLOW;
	ctx->user_ip4 = o->dst.addr[3];
	ctx->user_port = bpf_htons(o->dst.port);
	bump(STAT_PEERNAME);
	return ALLOW;
}

SEC("cgroup/getpeername6")
int camblet_getpeername6(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct orig_dst *o = bpf_map_lookup_elem(&orig_by_cookie, &cookie);
	if (!o)
		return ALLOW;
	ctx->user_ip6[0] = o->dst.addr[0];
	ctx->user_ip6[1] = o->dst.addr[1];
	ctx->user_ip6[2] = o->dst.addr[2];
	ctx->user_ip6[3] = o->dst.addr[3];
	ctx->user_port = bpf_htons(o->dst.port);
	bump(STAT_PEERNAME);
	return ALLOW;
}

// Reads every field unconditionally: branching around ctx loads lets clang merge them into one
// pointer-offset load, which the verifier rejects ("dereference of modified ctx ptr"); the
// empty asm keeps clang from sinking the loads back into the branches.
static __always_inline void local_end(struct bpf_sock_ops *s, struct addr_port *k)
{
	__u32 family = s->family;
	__u32 ip4 = s->local_ip4;
	__u32 a0 = s->local_ip6[0], a1 = s->local_ip6[1], a2 = s->local_ip6[2], a3 = s->local_ip6[3];
	/* opaque to the optimizer: keeps the loads where they are */
	asm volatile("" : "+r"(ip4), "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3));
	k->port = s->local_port; /* host order */
	if (family == AF_INET) {
		set_mapped(k->addr, ip4);
	} else {
		k->addr[0] = a0;
		k->addr[1] = a1;
		k->addr[2] = a2;
		k->addr[3] = a3;
	}
}

SEC("sockops")
int camblet_sockops(struct bpf_sock_ops *s)
{
	if (s->family != AF_INET && s->family != AF_INET6)
		return ALLOW;
	struct addr_port k = {};
	__u64 cookie;
	switch (s->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB: /* local port is bound, SYN not yet sent */
		cookie = bpf_get_socket_cookie(s);
		if (!bpf_map_lookup_elem(&onward_cookies, &cookie))
			break;
		local_end(s, &k);
		bpf_map_update_elem(&onward_ends, &k, &cookie, BPF_ANY);
		bpf_sock_ops_cb_flags_set(s, BPF_SOCK_OPS_STATE_CB_FLAG);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB: /* before the ACK: ahead of the proxy's accept */
		cookie = bpf_get_socket_cookie(s);
		struct orig_dst *o = bpf_map_lookup_elem(&orig_by_cookie, &cookie);
		if (!o)
			break;
		local_end(s, &k);
		bpf_map_update_elem(&orig_by_client, &k, o, BPF_ANY);
		bpf_sock_ops_cb_flags_set(s, BPF_SOCK_OPS_STATE_CB_FLAG);
		bump(STAT_RECORDED);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (s->args[1] != BPF_TCP_CLOSE)
			break;
		cookie = bpf_get_socket_cookie(s);
		bpf_map_delete_elem(&orig_by_cookie, &cookie);
		if (bpf_map_lookup_elem(&onward_cookies, &cookie)) {
			bpf_map_delete_elem(&onward_cookies, &cookie);
			local_end(s, &k);
			bpf_map_delete_elem(&onward_ends, &k);
		}
		break;
	}
	return ALLOW;
}

SEC("sk_lookup")
int camblet_sk_lookup(struct bpf_sk_lookup *ctx)
{
	if (ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	__u32 port = ctx->local_port;
	if (!bpf_map_lookup_elem(&inbound_ports, &port))
		return SK_PASS;
	struct addr_port remote = { .port = bpf_ntohs(ctx->remote_port) };
	__u32 idx = 0;
	if (ctx->family == AF_INET) {
		set_mapped(remote.addr, ctx->remote_ip4);
	} else {
		remote.addr[0] = ctx->remote_ip6[0];
		remote.addr[1] = ctx->remote_ip6[1];
		remote.addr[2] = ctx->remote_ip6[2];
		remote.addr[3] = ctx->remote_ip6[3];
		idx = 1;
	}
	if (bpf_map_lookup_elem(&onward_ends, &remote)) {
		bump(STAT_BYPASSED);
		return SK_PASS; /* the agent's own onward leg to the app */
	}
	struct bpf_sock *sk = bpf_map_lookup_elem(&listeners, &idx);
	if (!sk) {
		struct config *cfg = get_config();
		if (cfg && (cfg->flags & CFG_FAIL_CLOSED)) {
			bump(STAT_DROPPED);
			return SK_DROP;
		}
		return SK_PASS; /* no agent: fail open to the app */
	}
	long err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (!err)
		bump(STAT_STEERED);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
