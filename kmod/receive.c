// SPDX-License-Identifier: GPL-2.0
/*
 * Receive into page-aligned mappings: page flipping, with a copy fallback.
 *
 * The application maps a read-only receive area from /dev/zcopy. A receive
 * walks the socket's queue with tcp_read_sock(), as splice does: a frag that
 * is a whole, page-aligned, ordinary page (what a page-reference send
 * delivers) is taken by reference and mapped into a free slot of the area;
 * everything else is copied into pages of ours, mapped the same way, and
 * cleared past what was copied. Slots are mapped in batches with
 * vm_insert_pages(). A released slot is unmapped, and its page dropped
 * unless it is one of ours: that stays, a spare that a later copy fills if
 * nothing else holds it by then, so that a stream that is all copies (any
 * sender over a NIC without header split) does not allocate and clear a
 * page for each. Should an insert fail, the area's ->fault maps the slot
 * on first touch: data taken from the socket is never lost.
 *
 * The mappings are read-only, as TCP_ZEROCOPY_RECEIVE's are: the pages may
 * be shared with their sender, whose pool copies them on write.
 *
 * Lock order, as TCP's: socket lock, mmap_lock, area->lock, i_mmap_rwsem.
 */

#include <linux/highmem.h>
#include <linux/ipv6.h>
#include <linux/mm.h>
#include <linux/net.h>
#include <linux/pagemap.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uio.h>
#include <net/sock.h>
#include <net/tcp.h>
#include <net/udp.h>

#include "zcopy.h"

static unsigned int max_recv_pages = 65536;
module_param(max_recv_pages, uint, 0644);
MODULE_PARM_DESC(max_recv_pages, "Most pages in one receive area (default 65536)");

/**
 * struct zcopy_rx_slot - one page-sized slot of a receive area
 * @page:	the page it holds, or NULL
 * @len:	bytes of data in it, from its first
 * @fwd:	pieces of it that forwards in flight hold
 * @next_spare:	while @spare, the spare slot given back before it
 * @ours:	@page is a page of ours that received bytes were copied to
 * @mapped:	@page was inserted in the mapping and not zapped since (one
 *		the application zapped is mapped again by ->fault)
 * @released:	given back while forwards held it: unmapped, and freed
 *		when the last of them lets go
 * @spare:	given back, unmapped, with its page of ours kept for a later
 *		copy (zcopy_rx_spare_alone()): read(2)'s buffer is not
 *		allocated and cleared for each call either
 */
struct zcopy_rx_slot {
	struct page	*page;
	u32		len;
	u32		fwd;
	u32		next_spare;
	bool		ours;
	bool		mapped;
	bool		released;
	bool		spare;
};

#define ZCOPY_RX_NO_SPARE	U32_MAX

/*
 * Room for the most that one call copies in and out: its descriptors, then
 * the offsets it gives back. An area keeps one between calls, so that a
 * receive allocates nothing: with init_on_alloc, Debian's default, each
 * allocation is also cleared.
 */
#define ZCOPY_RX_ROOM	(ZCOPY_MAX_RX_DESC * (sizeof(struct zcopy_rx_desc) + sizeof(u64)))

/**
 * struct zcopy_rx_area - the receive area of a file
 * @area:	what it shares with a send pool
 * @room:	ZCOPY_RX_ROOM bytes for a call's lists, NULL while a call has
 *		them (zcopy_rx_room_get())
 * @lock:	protects everything below, and orders every insertion of a
 *		PTE against every zap
 * @maps:	mappings of the area (one at most)
 * @used:	slots holding a page, released ones that forwards hold included
 * @spares:	spare slots: free, but holding a page
 * @spare:	the spare slot given back last, or ZCOPY_RX_NO_SPARE
 * @hint:	where to look for a free slot next
 * @slots:	the slots
 */
struct zcopy_rx_area {
	struct zcopy_area	area;
	void			*room;
	struct mutex		lock;		/* see above */
	unsigned int		maps;
	unsigned long		used;
	unsigned long		spares;
	u32			spare;
	unsigned long		hint;
	struct zcopy_rx_slot	slots[];
};

static struct zcopy_rx_area *zcopy_rx_area(struct zcopy_area *area)
{
	return container_of(area, struct zcopy_rx_area, area);
}

static const struct zcopy_area_ops zcopy_rx_area_ops;

/* Holds received data that the application has not given back. */
static bool zcopy_rx_slot_in_use(const struct zcopy_rx_slot *slot)
{
	return slot->page && !slot->released && !slot->spare;
}

/*
 * A slot's page mapped again on touch (after MADV_DONTNEED, or a batch
 * insert that failed). It is inserted here, under the area's lock, which
 * a release holds while it zaps the slot: a fault can never map a page
 * that a release has already taken away.
 */
static vm_fault_t zcopy_rx_fault(struct vm_fault *vmf)
{
	struct zcopy_rx_area *area = zcopy_rx_area(vmf->vma->vm_private_data);
	unsigned long idx = vmf->pgoff - area->area.pgoff;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	int err;

	if (idx >= area->area.nr_pages)
		return VM_FAULT_SIGBUS;
	mutex_lock(&area->lock);
	if (zcopy_rx_slot_in_use(&area->slots[idx])) {
		err = vm_insert_page(vmf->vma, vmf->address, area->slots[idx].page);
		/* EBUSY: another thread's fault mapped it first. */
		if (!err || err == -EBUSY) {
			area->slots[idx].mapped = true;
			ret = VM_FAULT_NOPAGE;
		} else if (err == -ENOMEM) {
			ret = VM_FAULT_OOM;
		}
	}
	mutex_unlock(&area->lock);
	return ret;
}

static void zcopy_rx_open(struct vm_area_struct *vma)
{
	struct zcopy_rx_area *area = zcopy_rx_area(vma->vm_private_data);

	mutex_lock(&area->lock);
	area->maps++;
	WRITE_ONCE(area->area.uaddr, vma->vm_start);
	mutex_unlock(&area->lock);
}

static void zcopy_rx_close(struct vm_area_struct *vma)
{
	struct zcopy_rx_area *area = zcopy_rx_area(vma->vm_private_data);

	mutex_lock(&area->lock);
	area->maps--;
	mutex_unlock(&area->lock);
}

static const struct vm_operations_struct zcopy_rx_vm_ops = {
	.open		= zcopy_rx_open,
	.close		= zcopy_rx_close,
	.may_split	= zcopy_area_may_split,
	.fault		= zcopy_rx_fault,
};

/* With the file: no mapping is left. */
static void zcopy_rx_free(struct zcopy_area *za)
{
	struct zcopy_rx_area *area = zcopy_rx_area(za);
	unsigned long i;

	for (i = 0; i < za->nr_pages; i++)
		if (area->slots[i].page)
			put_page(area->slots[i].page);
	zcopy_count(za->zf, ZC_RX_SLOTS_USED, -(s64)area->used);
	zcopy_area_destroy(za);
	kvfree(area->room);
	kvfree(area);
}

static const struct zcopy_area_ops zcopy_rx_area_ops = {
	.vm_ops	= &zcopy_rx_vm_ops,
	.free	= zcopy_rx_free,
};

static struct zcopy_area *zcopy_rx_create(struct zcopy_file *zf, unsigned long nr)
{
	struct zcopy_rx_area *area;
	int ret;

	if (nr > READ_ONCE(max_recv_pages))
		return ERR_PTR(-EINVAL);
	area = kvzalloc(struct_size(area, slots, nr), GFP_KERNEL_ACCOUNT);
	if (!area)
		return ERR_PTR(-ENOMEM);
	ret = -ENOMEM;
	area->room = kvmalloc(ZCOPY_RX_ROOM, GFP_KERNEL_ACCOUNT);
	if (!area->room)
		goto err_free_area;
	ret = zcopy_area_init(&area->area, zf, &zcopy_rx_area_ops,
			      ZCOPY_MMAP_RECV >> PAGE_SHIFT, nr);
	if (ret)
		goto err_free_room;
	mutex_init(&area->lock);
	area->spare = ZCOPY_RX_NO_SPARE;
	return &area->area;

err_free_room:
	kvfree(area->room);
err_free_area:
	kvfree(area);
	return ERR_PTR(ret);
}

/* One mapping at a time, of the whole area. */
static int zcopy_rx_attach(struct zcopy_area *za, struct vm_area_struct *vma)
{
	struct zcopy_rx_area *area = zcopy_rx_area(za);

	if (vma_pages(vma) != za->nr_pages || READ_ONCE(area->maps))
		return -EINVAL;
	vm_flags_set(vma, VM_MIXEDMAP | VM_DONTCOPY | VM_DONTEXPAND);
	vm_flags_clear(vma, VM_MAYWRITE | VM_MAYEXEC);
	vma->vm_private_data = za;
	zcopy_rx_open(vma);
	return 0;
}

/* Read-only for good, as TCP_ZEROCOPY_RECEIVE's mappings, or no area is made. */
int zcopy_rx_mmap(struct zcopy_file *zf, struct vm_area_struct *vma)
{
	if (vma->vm_flags & (VM_WRITE | VM_EXEC))
		return -EPERM;
	return zcopy_area_mmap(zf, &zf->rx, vma, zcopy_rx_create, zcopy_rx_attach);
}

/* The file's receive area, once mapped; it lives as long as the file. */
struct zcopy_rx_area *zcopy_file_rx(struct zcopy_file *zf)
{
	/* Pairs with smp_store_release() in zcopy_area_mmap(). */
	struct zcopy_area *area = smp_load_acquire(&zf->rx);

	return area ? zcopy_rx_area(area) : NULL;
}

/* Why bytes were copied, not mapped: ZC_RX_COPIED_* from ZC_RX_COPIED_LINEAR on. */
enum zcopy_rx_cause {
	ZCOPY_RX_LINEAR,
	ZCOPY_RX_PARTIAL,
	ZCOPY_RX_UNALIGNED,
	ZCOPY_RX_FOREIGN,
	ZCOPY_RX_CUT,
	ZCOPY_RX_DATAGRAM,
	ZCOPY_RX_NR_CAUSES,
	ZCOPY_RX_MAP = ZCOPY_RX_NR_CAUSES,	/* not copied: mapped */
};

/*
 * A receive in progress: descriptors filled so far, the page of ours that
 * copied bytes go to until it is full, and the bytes by how they came.
 */
struct zcopy_rx_ctx {
	struct zcopy_rx_area	*area;
	struct zcopy_rx_desc	*desc;
	unsigned int		nr_desc;
	unsigned int		max_desc;
	struct zcopy_rx_desc	*bounce;
	size_t			mapped;
	size_t			copied;
	size_t			why[ZCOPY_RX_NR_CAUSES];
	int			err;
};

/* Give back slot @idx, unmapped, whose page is ours: it stays for a later copy. */
static void zcopy_rx_spare_push(struct zcopy_rx_area *area, unsigned long idx)
{
	struct zcopy_rx_slot *slot = &area->slots[idx];

	lockdep_assert_held(&area->lock);
	slot->spare = true;
	slot->len = 0;
	slot->next_spare = area->spare;
	area->spare = idx;
	area->spares++;
	area->used--;
	zcopy_count(area->area.zf, ZC_RX_SLOTS_USED, -1);
}

/* The spare slot given back last, for a copy: it holds a page of ours. */
static unsigned long zcopy_rx_spare_pop(struct zcopy_rx_area *area)
{
	unsigned long idx = area->spare;
	struct zcopy_rx_slot *slot = &area->slots[idx];

	lockdep_assert_held(&area->lock);
	area->spare = slot->next_spare;
	area->spares--;
	slot->spare = false;
	return idx;
}

/* Empty slot @idx: unmap its page and let go of it. */
static void zcopy_rx_slot_empty(struct zcopy_rx_area *area, unsigned long idx)
{
	struct zcopy_rx_slot *slot = &area->slots[idx];

	lockdep_assert_held(&area->lock);
	if (slot->mapped)
		zcopy_area_zap(&area->area, idx, 1);
	put_page(slot->page);
	slot->page = NULL;
	slot->ours = false;
	slot->mapped = false;
}

/*
 * A slot that holds no page, for one: a free one, else a spare emptied.
 * Only when no slot is free, so that the search always ends.
 */
static unsigned long zcopy_rx_slot_get(struct zcopy_rx_area *area)
{
	unsigned long i, idx;

	lockdep_assert_held(&area->lock);
	if (area->used + area->spares == area->area.nr_pages) {
		idx = zcopy_rx_spare_pop(area);
		zcopy_rx_slot_empty(area, idx);
		return idx;
	}
	for (i = 0;; i++) {
		idx = (area->hint + i) % area->area.nr_pages;
		if (!area->slots[idx].page)
			break;
	}
	area->hint = idx + 1;
	return idx;
}

/* Slot @idx holds the next @len bytes received: its descriptor. */
static struct zcopy_rx_desc *zcopy_rx_fill(struct zcopy_rx_ctx *ctx, unsigned long idx,
					   unsigned int len, u32 flags)
{
	struct zcopy_rx_desc *d = &ctx->desc[ctx->nr_desc++];

	ctx->area->slots[idx].len = len;
	ctx->area->used++;
	d->offset = (u64)idx << PAGE_SHIFT;
	d->len = len;
	d->flags = flags;
	return d;
}

/* Room for one more slot in this receive? */
static bool zcopy_rx_room(struct zcopy_rx_ctx *ctx)
{
	lockdep_assert_held(&ctx->area->lock);
	return ctx->nr_desc < ctx->max_desc && ctx->area->used < ctx->area->area.nr_pages;
}

/*
 * Put @page in a slot, for @len bytes; the slot takes our reference.
 * ZCOPY_RX_COPIED in @flags: the page is ours.
 */
static struct zcopy_rx_desc *zcopy_rx_push(struct zcopy_rx_ctx *ctx, struct page *page,
					   unsigned int len, u32 flags)
{
	struct zcopy_rx_area *area = ctx->area;
	unsigned long idx;

	if (!zcopy_rx_room(ctx))
		return NULL;
	idx = zcopy_rx_slot_get(area);
	area->slots[idx].page = page;
	area->slots[idx].ours = flags & ZCOPY_RX_COPIED;
	return zcopy_rx_fill(ctx, idx, len, flags);
}

/*
 * A piece of an skb's data: the linear part of the skb or of one on its
 * frag list, or one page fragment of either. @start and @end are offsets
 * in the skb that tcp_read_sock() hands over, frag list included.
 */
struct zcopy_rx_piece {
	unsigned int		start;
	unsigned int		end;
	const skb_frag_t	*frag;		/* NULL: linear data */
};

/*
 * The pieces of an skb, in order: its linear part and page fragments, then
 * those of each skb on its frag list, where GRO chains the segments that
 * did not fit in MAX_SKB_FRAGS fragments. One pass for the whole actor
 * call, as its offsets only grow.
 */
struct zcopy_rx_walk {
	const struct sk_buff	*head;
	const struct sk_buff	*skb;		/* the head, or one on its frag list */
	int			frag;		/* -1: skb's linear part */
	unsigned int		start;		/* where that piece starts in head */
	bool			rest;		/* past what we walk: see below */
};

static void zcopy_rx_walk_init(struct zcopy_rx_walk *w, const struct sk_buff *skb)
{
	*w = (struct zcopy_rx_walk){ .head = skb, .skb = skb, .frag = -1 };
}

/* Move @w to the piece after its current one. */
static void zcopy_rx_walk_next(struct zcopy_rx_walk *w)
{
	const struct sk_buff *next;

	if (w->frag + 1 < skb_shinfo(w->skb)->nr_frags) {
		w->frag++;
		return;
	}
	/* A frag list's own frag list comes next: we do not walk it. */
	if (w->skb != w->head && skb_has_frag_list(w->skb)) {
		w->rest = true;
		return;
	}
	next = w->skb == w->head ? skb_shinfo(w->head)->frag_list : w->skb->next;
	if (next) {
		w->skb = next;
		w->frag = -1;
	} else {
		w->rest = true;
	}
}

/* The piece of @w's skb that holds byte @off, at or after the current one. */
static void zcopy_rx_walk_to(struct zcopy_rx_walk *w, unsigned int off,
			     struct zcopy_rx_piece *p)
{
	unsigned int size;

	while (!w->rest) {
		p->frag = w->frag < 0 ? NULL : &skb_shinfo(w->skb)->frags[w->frag];
		size = p->frag ? skb_frag_size(p->frag) : skb_headlen(w->skb);
		if (off < w->start + size) {
			p->start = w->start;
			p->end = w->start + size;
			return;
		}
		w->start += size;
		zcopy_rx_walk_next(w);
	}
	/* Past every list we walk (a frag list's own frag list): copied as one piece. */
	p->frag = NULL;
	p->start = w->start;
	p->end = w->head->len;
}

/*
 * Can the piece @p, from byte @off on, be mapped as it is? TCP's rule
 * (can_map_frag()), and what vm_insert_pages() takes: a whole, ordinary
 * page, from its first byte, and @left bytes of the receive for all of it.
 * Else the reason it is copied.
 */
static enum zcopy_rx_cause zcopy_rx_can_map(const struct zcopy_rx_piece *p,
					    unsigned int off, size_t left)
{
	const skb_frag_t *frag = p->frag;
	struct page *page;

	if (!frag)
		return ZCOPY_RX_LINEAR;
	/* A page that no alignment would make mappable says so first. */
	if (skb_frag_is_net_iov(frag))
		return ZCOPY_RX_FOREIGN;
	page = skb_frag_page(frag);
	if (PageCompound(page) || page->mapping || PageSlab(page) || page_has_type(page))
		return ZCOPY_RX_FOREIGN;
	if (off != p->start || skb_frag_off(frag))
		return ZCOPY_RX_UNALIGNED;
	if (skb_frag_size(frag) != PAGE_SIZE)
		return ZCOPY_RX_PARTIAL;
	if (left < PAGE_SIZE)
		return ZCOPY_RX_CUT;
	return ZCOPY_RX_MAP;
}

/*
 * A page of ours is allocated uncleared: all of it is mapped, so what the
 * copies did not fill is cleared once they are done with it, before it is
 * mapped (and a spare's old bytes past its new ones with it).
 */
static struct page *zcopy_rx_alloc_page(void)
{
	return alloc_page(GFP_KERNEL_ACCOUNT);
}

static void zcopy_rx_clear_tail(struct page *page, unsigned int len)
{
	if (len < PAGE_SIZE)
		memzero_page(page, len, PAGE_SIZE - len);
}

/*
 * Whether a copy may write into spare slot @idx's page: only if no one else
 * holds it. While it was mapped, something may have taken it (vmsplice(),
 * O_DIRECT, a MSG_ZEROCOPY send from the area), and a forward's skb, or an
 * MTU probe made from one, may still carry it. From there it may be
 * another receiver's mapped data, which must never change. A spare has no
 * mapping (zcopy_rx_release() zapped it), so no one takes it meanwhile.
 */
static bool zcopy_rx_spare_alone(struct zcopy_rx_area *area, unsigned long idx)
{
	lockdep_assert_held(&area->lock);
	return page_ref_count(area->slots[idx].page) == 1;
}

/*
 * A slot with a page of ours for copies to fill: a spare's that we alone
 * hold, else a new page.
 */
static struct zcopy_rx_desc *zcopy_rx_push_ours(struct zcopy_rx_ctx *ctx)
{
	struct zcopy_rx_area *area = ctx->area;
	struct page *page;
	unsigned long idx;

	if (!zcopy_rx_room(ctx))
		return NULL;
	while (area->spares) {
		idx = zcopy_rx_spare_pop(area);
		if (zcopy_rx_spare_alone(area, idx))
			return zcopy_rx_fill(ctx, idx, 0, ZCOPY_RX_COPIED);
		/* The others keep the page; the slot lets go of it. */
		zcopy_rx_slot_empty(area, idx);
	}
	page = zcopy_rx_alloc_page();
	if (!page) {
		ctx->err = -ENOMEM;
		return NULL;
	}
	idx = zcopy_rx_slot_get(area);
	area->slots[idx].page = page;
	area->slots[idx].ours = true;
	return zcopy_rx_fill(ctx, idx, 0, ZCOPY_RX_COPIED);
}

/* No more copies go to the current page of ours. */
static void zcopy_rx_bounce_done(struct zcopy_rx_ctx *ctx)
{
	if (!ctx->bounce)
		return;
	zcopy_rx_clear_tail(ctx->area->slots[ctx->bounce->offset >> PAGE_SHIFT].page,
			    ctx->bounce->len);
	ctx->bounce = NULL;
}

/*
 * Take back the slot that zcopy_rx_push_ours() just filled, for a copy
 * that failed before its first byte: an empty descriptor would read as the
 * end of the stream. Its page goes with it, spare or not.
 */
static void zcopy_rx_unpush_ours(struct zcopy_rx_ctx *ctx)
{
	struct zcopy_rx_desc *d = &ctx->desc[--ctx->nr_desc];

	WARN_ON_ONCE(d != ctx->bounce || d->len);
	zcopy_rx_slot_empty(ctx->area, d->offset >> PAGE_SHIFT);
	ctx->area->used--;
	ctx->bounce = NULL;
}

/*
 * Copy @len bytes of @skb from @off into pages of ours, for @why; returns
 * bytes copied. Copied bytes are packed: a page of ours takes the copies
 * of several pieces until it is full.
 */
static size_t zcopy_rx_copy(struct zcopy_rx_ctx *ctx, const struct sk_buff *skb,
			    unsigned int off, size_t len, enum zcopy_rx_cause why)
{
	struct zcopy_rx_slot *slot;
	size_t done = 0, n;
	struct page *page;
	void *kaddr;
	int err;

	while (done < len) {
		if (!ctx->bounce) {
			ctx->bounce = zcopy_rx_push_ours(ctx);
			if (!ctx->bounce)
				break;
		}
		slot = &ctx->area->slots[ctx->bounce->offset >> PAGE_SHIFT];
		page = slot->page;
		n = min_t(size_t, len - done, PAGE_SIZE - ctx->bounce->len);
		kaddr = kmap_local_page(page);
		err = skb_copy_bits(skb, off + done, kaddr + ctx->bounce->len, n);
		kunmap_local(kaddr);
		/* The page may be mapped in user space: its view, too. */
		flush_dcache_page(page);
		if (err) {
			/* EFAULT, on 6.12 from unreadable (devmem) frags too. */
			ctx->err = err;
			if (!ctx->bounce->len)
				zcopy_rx_unpush_ours(ctx);
			break;
		}
		ctx->bounce->len += n;
		slot->len = ctx->bounce->len;
		done += n;
		if (ctx->bounce->len == PAGE_SIZE)
			ctx->bounce = NULL;
	}
	ctx->copied += done;
	ctx->why[why] += done;
	return done;
}

/* Map the page of fragment @frag into the next slot. */
static bool zcopy_rx_map_frag(struct zcopy_rx_ctx *ctx, const skb_frag_t *frag)
{
	struct page *page = skb_frag_page(frag);

	if (!zcopy_rx_push(ctx, page, PAGE_SIZE, ZCOPY_RX_MAPPED))
		return false;
	get_page(page);
	/* What is copied next goes to a page after this one. */
	zcopy_rx_bounce_done(ctx);
	ctx->mapped += PAGE_SIZE;
	return true;
}

/* tcp_read_sock()'s actor: map what can be mapped, copy the rest. */
static int zcopy_rx_actor(read_descriptor_t *rd, struct sk_buff *skb,
			  unsigned int offset, size_t len)
{
	struct zcopy_rx_ctx *ctx = rd->arg.data;
	struct zcopy_rx_piece p;
	struct zcopy_rx_walk w;
	enum zcopy_rx_cause why;
	size_t done = 0, n;
	unsigned int off;

	len = min_t(size_t, len, rd->count);
	zcopy_rx_walk_init(&w, skb);
	while (done < len && !ctx->err) {
		off = offset + done;
		zcopy_rx_walk_to(&w, off, &p);
		why = zcopy_rx_can_map(&p, off, len - done);
		if (why == ZCOPY_RX_MAP) {
			if (!zcopy_rx_map_frag(ctx, p.frag))
				break;
			done += PAGE_SIZE;
			continue;
		}
		n = zcopy_rx_copy(ctx, skb, off, min_t(size_t, p.end - off, len - done), why);
		if (!n)
			break;
		done += n;
	}
	rd->count -= done;
	return done;
}

/* Slots mapped by one vm_insert_pages() call. */
#define ZCOPY_RX_MAP_BATCH	32

/*
 * Map the slots just filled, in runs of consecutive slots. None has a PTE
 * (releasing or emptying a slot zaps it under the area's lock), so an
 * insert finds a page in place only if that invariant broke: zap it and
 * insert again. What still fails (no memory for a page table) is mapped
 * by ->fault on first touch.
 */
static void zcopy_rx_map(struct zcopy_rx_area *area, struct vm_area_struct *vma,
			 const struct zcopy_rx_desc *desc, unsigned int nr)
{
	struct page *batch[ZCOPY_RX_MAP_BATCH];
	unsigned long first, idx, num, addr, done;
	unsigned int i = 0, n;
	int err;

	lockdep_assert_held(&area->lock);
	while (i < nr) {
		first = desc[i].offset >> PAGE_SHIFT;
		if (area->slots[first].mapped) {
			i++;
			continue;
		}
		for (n = 0; i < nr && n < ARRAY_SIZE(batch); i++, n++) {
			idx = desc[i].offset >> PAGE_SHIFT;
			if (idx != first + n || area->slots[idx].mapped)
				break;
			batch[n] = area->slots[idx].page;
		}
		num = n;
		addr = vma->vm_start + (first << PAGE_SHIFT);
		err = vm_insert_pages(vma, addr, batch, &num);
		if (err == -EBUSY) {
			/* The last num of the run were not inserted. */
			done = n - num;
			zcopy_area_zap(&area->area, first + done, num);
			vm_insert_pages(vma, addr + (done << PAGE_SHIFT), batch + done, &num);
		}
		for (idx = first; idx < first + n - num; idx++)
			area->slots[idx].mapped = true;
	}
}

/* The area's mapping in the caller's address space, or NULL. */
static struct vm_area_struct *zcopy_rx_vma(struct zcopy_rx_area *area)
{
	return zcopy_area_vma(&area->area, current->mm);
}

/*
 * An IPv6 UDP socket with IPV6_RECVPATHMTU, whose path MTU notices only
 * recvmsg() returns: the LSM check's peek (zcopy_rx_may_recv()) would
 * take them.
 */
static bool zcopy_rx_wants_pmtu(struct sock *sk)
{
	struct ipv6_pinfo *np = sk->sk_family == AF_INET6 ? inet6_sk(sk) : NULL;

	return np && np->rxopt.bits.rxpmtu;
}

/*
 * May zcopy take @sk's queue? Not once an upper layer reads it (kTLS, ESP
 * in TCP) or a BPF sockmap redirects it. TCP checks under the socket lock,
 * and again after every wait, which drops the lock: such a layer may have
 * taken the socket over meanwhile, and would parse skbs that we then free.
 * Nor with UDP_GRO: datagrams may come merged, their boundaries in a
 * control message (UDP_GRO's gso_size) that a receive cannot return; nor
 * with IPV6_RECVPATHMTU.
 */
static bool zcopy_rx_queue_is_ours(struct sock *sk, bool tcp)
{
	if (tcp ? inet_csk_has_ulp(sk) : udp_test_bit(GRO_ENABLED, sk))
		return false;
	if (!tcp && zcopy_rx_wants_pmtu(sk))
		return false;
	return !rcu_access_pointer(__sk_user_data(sk));
}

/*
 * Wait for data like tcp_recvmsg(): 0 when there is some, 1 at the end of
 * the stream, else why not.
 */
static int zcopy_rx_wait_tcp(struct sock *sk, long *timeo)
{
	for (;;) {
		if (!zcopy_rx_queue_is_ours(sk, true))
			return -EOPNOTSUPP;
		if (!skb_queue_empty(&sk->sk_receive_queue))
			return 0;
		/* The peer's FIN before an error that came after it (an RST). */
		if (sock_flag(sk, SOCK_DONE))
			return 1;
		if (sk->sk_err)
			return sock_error(sk);
		if (sk->sk_shutdown & RCV_SHUTDOWN)
			return 1;
		if (sk->sk_state == TCP_CLOSE)
			return -ENOTCONN;
		if (!*timeo)
			return -EAGAIN;
		if (signal_pending(current))
			return sock_intr_errno(*timeo);
		/* Disconnected meanwhile (connect(AF_UNSPEC)): not our stream. */
		if (sk_wait_data(sk, timeo, NULL) < 0)
			return -EPIPE;
	}
}

/*
 * Whether the next byte to read is urgent data, where tcp_read_sock()
 * stops, and has come: an urgent pointer can come before its byte
 * (TCP_URG_NOTYET), and there is then nothing to step over yet.
 */
static bool zcopy_rx_at_urgent(struct sock *sk)
{
	struct tcp_sock *tp = tcp_sk(sk);

	return READ_ONCE(tp->urg_data) && tp->urg_seq == tp->copied_seq &&
	       before(tp->copied_seq, tp->rcv_nxt);
}

/*
 * Do at the urgent mark what tcp_recvmsg() does: skip the urgent byte, or
 * with SO_OOBINLINE read it as data; either way the urgent data is then
 * gone.
 */
static void zcopy_rx_pass_urgent(struct sock *sk)
{
	struct tcp_sock *tp = tcp_sk(sk);

	if (!sock_flag(sk, SOCK_URGINLINE))
		WRITE_ONCE(tp->copied_seq, tp->copied_seq + 1);
	WRITE_ONCE(tp->urg_data, 0);
	tcp_fast_path_check(sk);
}

/*
 * Take what the queue holds into the area: bytes taken, or an error.
 * @pass_urgent: first step over the urgent byte there, where nothing can
 * fail before tcp_read_sock() frees an skb that the step used up; one left
 * queued would be taken by tcp_recvmsg() for a sequence number bug.
 */
static int zcopy_rx_read_tcp(struct zcopy_rx_ctx *ctx, struct sock *sk,
			     read_descriptor_t *rd, bool pass_urgent)
{
	struct zcopy_rx_area *area = ctx->area;
	struct vm_area_struct *vma;
	int ret;

	mmap_read_lock(current->mm);
	vma = zcopy_rx_vma(area);
	if (!vma) {
		ret = -ENXIO;
		goto out_unlock_mm;
	}
	mutex_lock(&area->lock);
	if (area->used == area->area.nr_pages) {
		ret = -ENOSPC;
	} else {
		if (pass_urgent)
			zcopy_rx_pass_urgent(sk);
		ret = tcp_read_sock(sk, rd, zcopy_rx_actor);
		/* As tcp_recvmsg(): what is taken comes off SO_PEEK_OFF. */
		if (ret > 0)
			sk_peek_offset_bwd(sk, ret);
		zcopy_rx_bounce_done(ctx);
		zcopy_rx_map(area, vma, ctx->desc, ctx->nr_desc);
	}
	mutex_unlock(&area->lock);
out_unlock_mm:
	mmap_read_unlock(current->mm);
	return ret;
}

static int zcopy_rx_tcp(struct zcopy_rx_ctx *ctx, struct socket *sock,
			size_t max_bytes, long timeo)
{
	read_descriptor_t rd = { .arg.data = ctx, .count = max_bytes };
	struct sock *sk = sock->sk;
	bool pass_urgent = false;
	int ret;

	lock_sock(sk);
	if (sk->sk_state == TCP_LISTEN) {
		ret = -ENOTCONN;
		goto out_release;
	}
	/* Under repair (TCP_REPAIR) the queue is only peeked at. */
	if (tcp_sk(sk)->repair) {
		ret = -EPERM;
		goto out_release;
	}
	if (READ_ONCE(ctx->area->used) == ctx->area->area.nr_pages) {
		ret = -ENOSPC;
		goto out_release;
	}
	/*
	 * Until something is taken: an urgent byte stepped over leaves
	 * nothing to read, which is no end of the stream.
	 */
	for (;;) {
		ret = zcopy_rx_wait_tcp(sk, &timeo);
		if (!ret)
			ret = zcopy_rx_read_tcp(ctx, sk, &rd, pass_urgent);
		if (ret || ctx->nr_desc || ctx->err)
			break;
		pass_urgent = false;
		if (!zcopy_rx_at_urgent(sk))
			continue;
		/*
		 * Stopped at the mark with nothing read. A pending signal
		 * first, as tcp_recvmsg(): it may be SIGURG, whose handler
		 * reads the byte with MSG_OOB before the byte is skipped.
		 */
		if (signal_pending(current)) {
			ret = timeo ? sock_intr_errno(timeo) : -EAGAIN;
			break;
		}
		pass_urgent = true;
	}
out_release:
	release_sock(sk);
	/* End of stream, or what was taken even if something then failed. */
	if (ret > 0 || ctx->nr_desc)
		return 0;
	return ret ?: ctx->err;
}

static bool zcopy_udp_readable(struct sock *sk)
{
	return !skb_queue_empty_lockless(&sk->sk_receive_queue) ||
	       !skb_queue_empty_lockless(&udp_sk(sk)->reader_queue) ||
	       READ_ONCE(sk->sk_err) || (READ_ONCE(sk->sk_shutdown) & RCV_SHUTDOWN);
}

/*
 * The datagram at the head of @sk's queue, peeked (we hold a reference),
 * waiting up to *@timeo for one as recv(2) waits. NULL with *@err 0 once
 * the socket is shut down for reading and empty, else with the error.
 * Peeking at offset -1 sees the head, whatever SO_PEEK_OFF says.
 */
static struct sk_buff *zcopy_rx_udp_peek(struct sock *sk, long *timeo, int *err)
{
	struct sk_buff *skb;
	long left;
	int off;

	for (;;) {
		/* A BPF sockmap may have taken the socket over while we waited. */
		if (!zcopy_rx_queue_is_ours(sk, false)) {
			*err = -EOPNOTSUPP;
			return NULL;
		}
		off = -1;
		skb = __skb_recv_udp(sk, MSG_PEEK | MSG_DONTWAIT, &off, err);
		if (skb || *err != -EAGAIN)
			return skb;
		if (READ_ONCE(sk->sk_shutdown) & RCV_SHUTDOWN) {
			*err = 0;
			return NULL;
		}
		if (!*timeo)
			return NULL;
		if (signal_pending(current)) {
			*err = sock_intr_errno(*timeo);
			return NULL;
		}
		left = wait_event_interruptible_timeout(*sk_sleep(sk),
							zcopy_udp_readable(sk), *timeo);
		if (left < 0) {
			*err = sock_intr_errno(*timeo);
			return NULL;
		}
		if (!left)
			return NULL;
		if (*timeo != MAX_SCHEDULE_TIMEOUT)
			*timeo = left;
	}
}

/*
 * Take the peeked @skb off @sk's queue, as __sk_queue_drop_skb() does but
 * for a datagram received, not dropped; false if another reader took it
 * first.
 */
static bool zcopy_rx_udp_unlink(struct sock *sk, struct sk_buff *skb)
{
	struct sk_buff_head *queue = &udp_sk(sk)->reader_queue;
	bool ours = false;

	spin_lock_bh(&queue->lock);
	if (skb->next) {
		__skb_unlink(skb, queue);
		/* The queue's reference: ours stays. */
		refcount_dec(&skb->users);
		udp_skb_destructor(sk, skb);
		ours = true;
	}
	spin_unlock_bh(&queue->lock);
	return ours;
}

/* Count in @sk's family's UDP MIB, as udp_recvmsg() and udpv6_recvmsg() do. */
static void zcopy_rx_udp_mib(struct sock *sk, struct sk_buff *skb, int field)
{
	if (skb->protocol == htons(ETH_P_IP))
		UDP_INC_STATS(sock_net(sk), field, 0);
#if IS_ENABLED(CONFIG_IPV6)
	else
		UDP6_INC_STATS(sock_net(sk), field, 0);
#endif
}

/*
 * Receive the peeked datagram @skb, whole, into pages of ours, or leave
 * it queued when it does not fit (EMSGSIZE, ENOSPC). ENOENT: it was not
 * ours to take (another reader took it, or its checksum was bad); try the
 * next one. Consumes our reference to @skb.
 */
static int zcopy_rx_udp_take(struct zcopy_rx_ctx *ctx, struct sock *sk,
			     struct sk_buff *skb, size_t max_bytes)
{
	unsigned int len = udp_skb_len(skb), nr = max(DIV_ROUND_UP(len, PAGE_SIZE), 1U), i;
	struct zcopy_rx_area *area = ctx->area;
	struct vm_area_struct *vma;
	struct page **pages = NULL;
	void *kaddr;
	int ret;

	/* As recv(2), a corrupt datagram is dropped, whatever its size. */
	if (!udp_skb_csum_unnecessary(skb) && __udp_lib_checksum_complete(skb)) {
		if (zcopy_rx_udp_unlink(sk, skb)) {
			atomic_inc(&sk->sk_drops);
			zcopy_rx_udp_mib(sk, skb, UDP_MIB_CSUMERRORS);
			zcopy_rx_udp_mib(sk, skb, UDP_MIB_INERRORS);
		}
		ret = -ENOENT;
		goto out_consume;
	}
	if (nr > ctx->max_desc || len > max_bytes) {
		ret = -EMSGSIZE;
		goto out_consume;
	}

	ret = -ENOMEM;
	pages = kcalloc(nr, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		goto out_consume;
	ret = 0;
	for (i = 0; i < nr; i++) {
		unsigned int off = i << PAGE_SHIFT, seg = min_t(unsigned int, len - off, PAGE_SIZE);

		pages[i] = zcopy_rx_alloc_page();
		if (!pages[i]) {
			ret = -ENOMEM;
			goto out_put;
		}
		zcopy_rx_clear_tail(pages[i], seg);
		if (!seg)
			continue;
		kaddr = kmap_local_page(pages[i]);
		ret = skb_copy_bits(skb, off, kaddr, seg);
		kunmap_local(kaddr);
		flush_dcache_page(pages[i]);
		if (ret)
			goto out_put;
	}

	mmap_read_lock(current->mm);
	mutex_lock(&area->lock);
	vma = zcopy_rx_vma(area);
	if (!vma) {
		ret = -ENXIO;
	} else if (area->area.nr_pages - area->used < nr) {
		ret = area->used == area->area.nr_pages ? -ENOSPC : -EMSGSIZE;
	} else if (!zcopy_rx_udp_unlink(sk, skb)) {
		ret = -ENOENT;
	} else {
		for (i = 0; i < nr; i++) {
			unsigned int seg = min_t(unsigned int, len - (i << PAGE_SHIFT), PAGE_SIZE);

			zcopy_rx_push(ctx, pages[i], seg, ZCOPY_RX_COPIED);
			pages[i] = NULL;
		}
		ctx->desc[ctx->nr_desc - 1].flags |= ZCOPY_RX_EOR;
		ctx->copied += len;
		ctx->why[ZCOPY_RX_DATAGRAM] += len;
		zcopy_rx_map(area, vma, ctx->desc, ctx->nr_desc);
		ret = 0;
	}
	mutex_unlock(&area->lock);
	mmap_read_unlock(current->mm);

	if (!ret) {
		zcopy_rx_udp_mib(sk, skb, UDP_MIB_INDATAGRAMS);
		/* Moves SO_PEEK_OFF back by the datagram, as recv(2) does. */
		skb_consume_udp(sk, skb, len);
		skb = NULL;
	}
out_put:
	for (i = 0; i < nr; i++)
		if (pages[i])
			put_page(pages[i]);
	kfree(pages);
out_consume:
	if (skb)
		consume_skb(skb);
	return ret;
}

/* One datagram, whole: never a truncated one. */
static int zcopy_rx_udp(struct zcopy_rx_ctx *ctx, struct socket *sock,
			size_t max_bytes, long timeo)
{
	struct sk_buff *skb;
	int err, ret;

	for (;;) {
		skb = zcopy_rx_udp_peek(sock->sk, &timeo, &err);
		if (!skb)
			return err;
		ret = zcopy_rx_udp_take(ctx, sock->sk, skb, max_bytes);
		if (ret != -ENOENT)
			return ret;
		/* As udp_recvmsg(): a stream of bad datagrams must not hold the CPU. */
		cond_resched();
	}
}

static int zcopy_cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* Slot @idx, whose mappings are gone, is free. */
static void zcopy_rx_slot_free(struct zcopy_rx_area *area, unsigned long idx)
{
	struct zcopy_rx_slot *slot = &area->slots[idx];

	lockdep_assert_held(&area->lock);
	put_page(slot->page);
	slot->page = NULL;
	slot->ours = false;
	slot->mapped = false;
	slot->released = false;
	area->used--;
	zcopy_count(area->area.zf, ZC_RX_SLOTS_USED, -1);
}

/* A slot given back keeps its page for a copy: ours, and no forward's. */
static bool zcopy_rx_keeps(const struct zcopy_rx_slot *slot)
{
	return slot->ours && !slot->fwd;
}

/*
 * Give slots back, all or none: each is unmapped, in runs of consecutive
 * slots. A page of ours stays in its slot as a spare for a later copy;
 * the others are dropped, or for a slot that a forward holds, left to the
 * forward's end. Sorts @offs.
 */
static int zcopy_rx_release(struct zcopy_rx_area *area, u64 *offs, unsigned int n)
{
	struct zcopy_rx_slot *slot;
	unsigned long idx, first;
	unsigned int i, run;
	int ret = 0;

	/* Slots come back in the order they were received, most often. */
	for (i = 1; i < n && offs[i - 1] <= offs[i]; i++)
		;
	if (i < n)
		sort(offs, n, sizeof(*offs), zcopy_cmp_u64, NULL);
	mutex_lock(&area->lock);
	for (i = 0; i < n; i++) {
		if (offset_in_page(offs[i]) || offs[i] >= (u64)area->area.nr_pages << PAGE_SHIFT) {
			ret = -EINVAL;
			goto out_unlock;
		}
	}
	for (i = 0; i < n; i++) {
		slot = &area->slots[offs[i] >> PAGE_SHIFT];
		if (!zcopy_rx_slot_in_use(slot) || (i && offs[i] == offs[i - 1])) {
			ret = -ENOENT;
			goto out_unlock;
		}
	}

	for (i = 0; i < n; i += run) {
		first = offs[i] >> PAGE_SHIFT;
		for (run = 1; i + run < n && offs[i + run] >> PAGE_SHIFT == first + run; run++)
			;
		zcopy_area_zap(&area->area, first, run);
	}
	/* In descending order: copies then take the spares in ascending runs. */
	for (i = n; i-- > 0;) {
		idx = offs[i] >> PAGE_SHIFT;
		slot = &area->slots[idx];
		slot->mapped = false;
		if (zcopy_rx_keeps(slot))
			zcopy_rx_spare_push(area, idx);
		else if (slot->fwd)
			slot->released = true;
		else
			zcopy_rx_slot_free(area, idx);
	}
out_unlock:
	mutex_unlock(&area->lock);
	return ret;
}

/*
 * Let go of one forward's hold on the slots @idx, freeing those released
 * meanwhile. Called with @area->lock held.
 */
static void zcopy_rx_unhold_locked(struct zcopy_rx_area *area, const u32 *idx,
				   unsigned int n)
{
	struct zcopy_rx_slot *slot;
	unsigned int i;

	lockdep_assert_held(&area->lock);
	for (i = 0; i < n; i++) {
		slot = &area->slots[idx[i]];
		if (--slot->fwd)
			continue;
		zcopy_count(area->area.zf, ZC_FWD_SLOTS_HELD, -1);
		if (slot->released)
			zcopy_rx_slot_free(area, idx[i]);
	}
}

/*
 * Hold the slots of @n pieces for a forward, all or none: their pages stay
 * in the slots until zcopy_rx_unhold(), whatever the application releases
 * meanwhile. Each piece's bytes go to @bvec, its slot to @idx. A slot takes
 * at most ZCOPY_MAX_SLOT_FORWARDS holds (ENOBUFS past it), so that its
 * count never wraps and frees a page the stack still holds: pieces of a
 * byte cost the stack next to nothing, so no other limit stops them.
 */
int zcopy_rx_hold(struct zcopy_rx_area *area, const struct zcopy_fwd_piece *p,
		  unsigned int n, struct bio_vec *bvec, u32 *idx)
{
	u64 end = (u64)area->area.nr_pages << PAGE_SHIFT;
	struct zcopy_rx_slot *slot;
	unsigned int i;
	int ret = 0;

	mutex_lock(&area->lock);
	for (i = 0; i < n; i++) {
		if (!p[i].len || p[i].offset >= end) {
			ret = -EINVAL;
			goto out_unlock;
		}
		slot = &area->slots[p[i].offset >> PAGE_SHIFT];
		if (!zcopy_rx_slot_in_use(slot)) {
			ret = -ENOENT;
			goto out_unlock;
		}
		/* Within the slot's data, which never spans two slots. */
		if (p[i].len > slot->len || offset_in_page(p[i].offset) > slot->len - p[i].len) {
			ret = -EINVAL;
			goto out_unlock;
		}
	}
	for (i = 0; i < n; i++) {
		idx[i] = p[i].offset >> PAGE_SHIFT;
		slot = &area->slots[idx[i]];
		/* Here, not above: the same slot may come twice in one call. */
		if (slot->fwd >= ZCOPY_MAX_SLOT_FORWARDS) {
			zcopy_rx_unhold_locked(area, idx, i);
			ret = -ENOBUFS;
			goto out_unlock;
		}
		if (!slot->fwd++)
			zcopy_count(area->area.zf, ZC_FWD_SLOTS_HELD, 1);
		bvec_set_page(&bvec[i], slot->page, p[i].len, offset_in_page(p[i].offset));
	}
out_unlock:
	mutex_unlock(&area->lock);
	return ret;
}

/* A forward has let go of the slots @idx: free those released meanwhile. */
void zcopy_rx_unhold(struct zcopy_rx_area *area, const u32 *idx, unsigned int n)
{
	mutex_lock(&area->lock);
	zcopy_rx_unhold_locked(area, idx, n);
	mutex_unlock(&area->lock);
}

/*
 * @size bytes for a call's lists: the area's room, unless another call has
 * it; then (*@alloc) an allocation of that size.
 */
static void *zcopy_rx_room_get(struct zcopy_rx_area *area, size_t size, bool *alloc)
{
	void *room = xchg(&area->room, NULL);

	*alloc = !room;
	return room ?: kvmalloc(size, GFP_KERNEL_ACCOUNT);
}

static void zcopy_rx_room_put(struct zcopy_rx_area *area, void *room, bool alloc)
{
	if (alloc) {
		kvfree(room);
		return;
	}
	/* What this call wrote there, before the next call's xchg() takes it. */
	smp_store_release(&area->room, room);
}

/* Release the @count slots at the offsets that @uoffs lists, read into @offs. */
static int zcopy_rx_release_user(struct zcopy_rx_area *area, u64 uoffs, u32 count,
				 u64 *offs)
{
	if (copy_from_user(offs, u64_to_user_ptr(uoffs), array_size(count, sizeof(*offs))))
		return -EFAULT;
	return zcopy_rx_release(area, offs, count);
}

long zcopy_ioctl_release(struct zcopy_file *zf, struct zcopy_release __user *uarg)
{
	struct zcopy_release args;
	struct zcopy_rx_area *area;
	bool alloc;
	u64 *offs;
	int ret;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags || memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (!args.count || args.count > ZCOPY_MAX_RX_DESC)
		return -EINVAL;
	area = zcopy_file_rx(zf);
	if (!area)
		return -ENXIO;
	offs = zcopy_rx_room_get(area, array_size(args.count, sizeof(*offs)), &alloc);
	if (!offs)
		return -ENOMEM;
	ret = zcopy_rx_release_user(area, args.offsets, args.count, offs);
	zcopy_rx_room_put(area, offs, alloc);
	return ret;
}

/* Which sockets can be received from, and whether they are TCP. */
static int zcopy_rx_check_socket(struct socket *sock, bool *tcp)
{
	struct sock *sk = sock->sk;

	if (sk->sk_family != AF_INET && sk->sk_family != AF_INET6)
		return -EOPNOTSUPP;
	if (sock->type == SOCK_STREAM && sk->sk_protocol == IPPROTO_TCP)
		*tcp = true;
	else if (sock->type == SOCK_DGRAM && sk->sk_protocol == IPPROTO_UDP)
		*tcp = false;
	else
		return -EOPNOTSUPP;
	/* Checked again under the socket lock, after every wait. */
	if (!zcopy_rx_queue_is_ours(sk, *tcp))
		return -EOPNOTSUPP;
	return 0;
}

/*
 * Whether recv(2) may read @sock, by the LSMs' socket_recvmsg hook:
 * sock_recvmsg() runs it, zcopy's reads of the queue (tcp_read_sock(),
 * __skb_recv_udp()) do not, and security_socket_recvmsg() is not
 * exported. So a recvmsg of no bytes, without waiting, whose answer is
 * the hook's where the protocol could not have given it. TCP, asked to
 * peek at urgent data, takes nothing and answers only EINVAL, ENOTCONN,
 * EAGAIN or 0. UDP ignores MSG_OOB and peeks at its queue as recv(2)
 * would, answering EAGAIN, 0, or the socket's error, which it takes and
 * which is then the receive's answer, as it would be recv(2)'s (so is a
 * datagram with a bad checksum, dropped). An IPV6_RECVPATHMTU notice,
 * which it would take too, never waits here: such sockets are refused,
 * here again, as the option may have been set since zcopy_rx_check_socket()
 * (while the release list was read, which can wait on a page fault).
 */
static int zcopy_rx_may_recv(struct socket *sock, bool tcp)
{
	struct msghdr msg = {};
	int ret;

	if (!tcp && zcopy_rx_wants_pmtu(sock->sk))
		return -EOPNOTSUPP;
	iov_iter_kvec(&msg.msg_iter, ITER_DEST, NULL, 0, 0);
	ret = sock_recvmsg(sock, &msg, MSG_OOB | MSG_PEEK | MSG_DONTWAIT);
	if (ret >= 0 || ret == -EAGAIN)
		return 0;
	if (tcp && (ret == -EINVAL || ret == -ENOTCONN))
		return 0;
	return ret;
}

/* Receive into @desc, after releasing the slots listed, read into @offs. */
static int zcopy_recv(struct zcopy_file *zf, struct zcopy_rx_area *area,
		      struct zcopy_recv *args, struct zcopy_rx_desc *desc, u64 *offs)
{
	struct zcopy_rx_ctx ctx = {
		.area = area,
		.desc = desc,
		.max_desc = args->desc_count,
	};
	struct socket *sock;
	bool tcp;
	long timeo;
	int ret, i;

	sock = sockfd_lookup(args->sockfd, &ret);
	if (!sock)
		return ret;
	ret = zcopy_rx_check_socket(sock, &tcp);
	if (ret)
		goto out_put;
	if (args->release_count) {
		ret = zcopy_rx_release_user(area, args->release, args->release_count, offs);
		if (ret)
			goto out_put;
	}
	/*
	 * UDP, as TCP: no free slot fails at once, not once a datagram comes;
	 * and before the LSM check, whose peek may take the socket's error.
	 */
	if (!tcp && READ_ONCE(area->used) == area->area.nr_pages) {
		ret = -ENOSPC;
		goto out_put;
	}
	ret = zcopy_rx_may_recv(sock, tcp);
	if (ret)
		goto out_put;

	if ((args->flags & ZCOPY_RECV_DONTWAIT) || (sock->file->f_flags & O_NONBLOCK))
		timeo = 0;
	else if (args->timeout_ms)
		timeo = msecs_to_jiffies(args->timeout_ms);
	else
		timeo = sock_rcvtimeo(sock->sk, false);

	if (tcp)
		ret = zcopy_rx_tcp(&ctx, sock, args->max_bytes ?: SIZE_MAX, timeo);
	else
		ret = zcopy_rx_udp(&ctx, sock, args->max_bytes ?: SIZE_MAX, timeo);
	/*
	 * Restarted, the call would release its list again: ENOENT, or the
	 * slots that another thread has received into meanwhile.
	 */
	if (ret == -ERESTARTSYS && args->release_count)
		ret = -EINTR;
	if (ret)
		goto out_put;

	args->desc_count = ctx.nr_desc;
	args->bytes = ctx.mapped + ctx.copied;
	if (ctx.nr_desc) {
		zcopy_count(zf, ZC_RECEIVES, 1);
		zcopy_count(zf, ZC_RX_BYTES_MAPPED, ctx.mapped);
		zcopy_count(zf, ZC_RX_BYTES_COPIED, ctx.copied);
		zcopy_count(zf, ZC_RX_SLOTS_USED, ctx.nr_desc);
		for (i = 0; i < ZCOPY_RX_NR_CAUSES; i++)
			zcopy_count(zf, ZC_RX_COPIED_LINEAR + i, ctx.why[i]);
	}
out_put:
	sockfd_put(sock);
	return ret;
}

long zcopy_ioctl_recv(struct zcopy_file *zf, struct zcopy_recv __user *uarg)
{
	struct zcopy_rx_area *area;
	struct zcopy_rx_desc *desc;
	struct zcopy_recv args;
	size_t size;
	bool alloc;
	int ret;

	if (copy_from_user(&args, uarg, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~ZCOPY_RECV_FLAGS || args.__pad ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (!args.desc_count || args.desc_count > ZCOPY_MAX_RX_DESC ||
	    args.release_count > ZCOPY_MAX_RX_DESC)
		return -EINVAL;
	area = zcopy_file_rx(zf);
	if (!area)
		return -ENXIO;

	/*
	 * Where the results go must take them before data leaves the socket:
	 * a write to each page of the array proves it, as a copy of all of it
	 * would, for a fraction of the cost.
	 */
	size = array_size(args.desc_count, sizeof(*desc));
	if (fault_in_writeable(u64_to_user_ptr(args.desc), size) ||
	    copy_to_user(uarg, &args, sizeof(args)))
		return -EFAULT;
	desc = zcopy_rx_room_get(area, size + array_size(args.release_count, sizeof(u64)),
				 &alloc);
	if (!desc)
		return -ENOMEM;

	/* Each descriptor handed back is filled whole by zcopy_rx_fill(). */
	ret = zcopy_recv(zf, area, &args, desc, (u64 *)(desc + args.desc_count));
	if (!ret && (copy_to_user(u64_to_user_ptr(args.desc), desc,
				  array_size(args.desc_count, sizeof(*desc))) ||
		     copy_to_user(uarg, &args, sizeof(args))))
		ret = -EFAULT;
	zcopy_rx_room_put(area, desc, alloc);
	return ret;
}
