/* Raw Ethernet frames on an interface, for scripts/bench/net_frames.py.
 *
 *   rawframes send IFACE COUNT SIZE   sends COUNT frames of SIZE bytes (Ethernet header
 *                                     included) with sendmmsg, 64 at a time; above 1514 bytes
 *                                     TCP/IPv4 segments with a virtio-net header (GSO)
 *   rawframes recv IFACE COUNT IDLE_MS  counts frames of ethertype 0x88b5 (or TCP/IPv4 to
 *                                     port 9, whole or segmented) until COUNT (bytes of
 *                                     COUNT frames when SIZE > 1514) or IDLE_MS without one
 *
 * Both print one JSON object: frames, bytes and the seconds from the first frame to the last
 * (recv) or of the whole sending (send). The frames are those of the probe's `probe.frames=`
 * (images/probe/src/frames.rs), so both sides of a comparison carry the same bytes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define ETHERTYPE_BENCH 0x88b5
#define MAX_PLAIN 1514
#define BATCH 64

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int packet_socket(const char *iface, int protocol)
{
	int fd = socket(AF_PACKET, SOCK_RAW, htons(protocol));
	if (fd < 0)
		die("socket");
	struct sockaddr_ll addr = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(protocol),
		.sll_ifindex = if_nametoindex(iface),
	};
	if (addr.sll_ifindex == 0)
		die("if_nametoindex");
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("bind");
	return fd;
}

static uint16_t ip_checksum(const uint8_t *h, int len)
{
	uint32_t sum = 0;
	for (int i = 0; i < len; i += 2)
		sum += (h[i] << 8) | h[i + 1];
	while (sum > 0xffff)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* The frame (after a virtio-net header of hdr_len bytes when gso) into buf; its length. */
static size_t build_frame(uint8_t *buf, size_t size, int gso)
{
	size_t hdr = gso ? sizeof(struct virtio_net_hdr) : 0;
	uint8_t *f = buf + hdr;
	memset(buf, 0, hdr + size);
	memcpy(f, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x03", 12);
	if (!gso) {
		f[12] = ETHERTYPE_BENCH >> 8;
		f[13] = ETHERTYPE_BENCH & 0xff;
		for (size_t i = 14; i < size; i++)
			f[i] = (uint8_t)(i - 14);
		return size;
	}
	f[12] = 0x08;
	uint8_t *ip = f + 14, *tcp = f + 34;
	uint16_t ip_len = size - 14;
	ip[0] = 0x45;
	ip[2] = ip_len >> 8;
	ip[3] = ip_len & 0xff;
	ip[6] = 0x40;
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, "\x0a\x00\x00\x02\x0a\x00\x00\x01", 8);
	uint16_t sum = ip_checksum(ip, 20);
	ip[10] = sum >> 8;
	ip[11] = sum & 0xff;
	tcp[0] = 40000 >> 8;
	tcp[1] = 40000 & 0xff;
	tcp[3] = 9;
	tcp[12] = 5 << 4;
	tcp[13] = 0x18;
	tcp[14] = tcp[15] = 0xff;
	struct virtio_net_hdr *v = (struct virtio_net_hdr *)buf;
	v->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	v->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	v->hdr_len = 54;
	v->gso_size = 1448;
	v->csum_start = 34;
	v->csum_offset = 16;
	return hdr + size;
}

static int do_send(const char *iface, long count, size_t size)
{
	int gso = size > MAX_PLAIN;
	int fd = packet_socket(iface, 0);
	int one = 1;
	if (gso && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0)
		die("PACKET_VNET_HDR");
	int sndbuf = 64 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf));
	uint8_t *frame = malloc(size + 64);
	size_t len = build_frame(frame, size, gso);
	struct iovec iov = {.iov_base = frame, .iov_len = len};
	struct mmsghdr msgs[BATCH];
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	long sent = 0, refused = 0;
	double start = now();
	while (sent < count) {
		int n = count - sent < BATCH ? count - sent : BATCH;
		int done = sendmmsg(fd, msgs, n, 0);
		if (done < 0) {
			if (errno == ENOBUFS || errno == EAGAIN) {
				/* The queue below is full: the frame is not sent; try again. */
				refused++;
				continue;
			}
			die("sendmmsg");
		}
		sent += done;
	}
	double seconds = now() - start;
	printf("{\"frames\": %ld, \"bytes\": %ld, \"seconds\": %.6f, \"refused\": %ld}\n", sent,
	       sent * (long)size, seconds, refused);
	return 0;
}

static int do_recv(const char *iface, long count, int idle_ms)
{
	int fd = packet_socket(iface, ETH_P_ALL);
	int rcvbuf = 256 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	struct timeval tv = {.tv_sec = idle_ms / 1000, .tv_usec = (idle_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_t buflen = 65600;
	uint8_t *bufs = malloc(BATCH * buflen);
	struct iovec iov[BATCH];
	struct mmsghdr msgs[BATCH];
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs + i * buflen;
		iov[i].iov_len = buflen;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	fprintf(stderr, "ready\n");
	double ready = now();
	long frames = 0, bytes = 0, other = 0;
	double first = 0, last = 0;
	while (frames < count) {
		int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				/* Idle: done once frames came, else wait up to a minute for them. */
				if (frames > 0 || now() - ready > 60)
					break;
				continue;
			}
			die("recvmmsg");
		}
		double t = now();
		for (int i = 0; i < n; i++) {
			uint8_t *f = iov[i].iov_base;
			unsigned len = msgs[i].msg_len;
			unsigned type = len >= 14 ? (f[12] << 8 | f[13]) : 0;
			/* Ours: the bench ethertype, or the TCP/IPv4 segments to port 9 (whole, or
			 * cut by the kernel on the way). */
			int ours = type == ETHERTYPE_BENCH ||
				   (type == 0x0800 && len >= 54 && f[23] == 6 && f[36] == 0 && f[37] == 9);
			if (!ours) {
				other++;
				continue;
			}
			if (frames == 0)
				first = t;
			frames++;
			bytes += len;
			last = t;
		}
	}
	struct tpacket_stats st;
	socklen_t sl = sizeof(st);
	long dropped = getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0 ? (long)st.tp_drops : -1L;
	printf("{\"frames\": %ld, \"bytes\": %ld, \"seconds\": %.6f, \"other\": %ld, "
	       "\"socket_drops\": %ld}\n",
	       frames, bytes, last - first, other, dropped);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "send") == 0)
		return do_send(argv[2], atol(argv[3]), (size_t)atol(argv[4]));
	if (argc == 5 && strcmp(argv[1], "recv") == 0)
		return do_recv(argv[2], atol(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: rawframes send IFACE COUNT SIZE | recv IFACE COUNT IDLE_MS\n");
	return 2;
}
