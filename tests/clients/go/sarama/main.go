// Sarama (Debian's 1.22, built offline in GOPATH mode) against ringmq: admin, every codec
// (produce, consume, offsets for a timestamp), a consumer group that commits and resumes and
// the idempotent producer. Sarama 1.22 has no transactional producer. Sarama writes a batch
// header maxTimestamp of -1, so exact timestamp lookups check that the broker reads records.
// Usage: sarama BOOTSTRAP PREFIX. Output: see tests/clients/compat/common.py.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/Shopify/sarama"
)

const (
	n     = 200
	probe = 111
	step  = 10
)

var (
	boot, prefix string
	codecs       = []string{"none", "gzip", "snappy", "lz4", "zstd"}
	compression  = map[string]sarama.CompressionCodec{"none": sarama.CompressionNone,
		"gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
		"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}
)

func result(feature string, ok bool, detail string) {
	state := "fail"
	if ok {
		state = "pass"
	}
	detail = strings.Join(strings.Fields(detail), " ")
	if len(detail) > 300 {
		detail = detail[:300]
	}
	fmt.Printf("RESULT\t%s\t%s\t%s\n", feature, state, detail)
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_1_0_0
	c.ClientID = "ringmq-compat"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Flush.Frequency = 100 * time.Millisecond
	c.Producer.Flush.MaxMessages = n
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Return.Errors = true
	// With a retention set Sarama commits with OffsetCommit v2; without one it uses v1
	// (removed in Kafka 4.0, served by ringmq): groupCheck tries both.
	c.Consumer.Offsets.Retention = 24 * time.Hour
	return c
}

func baseTs() int64 { return time.Now().UnixNano()/1e6 - 60000 }

func ms(t int64) time.Time { return time.Unix(0, t*1e6) }

func create(admin sarama.ClusterAdmin, topic string, partitions int32) error {
	return admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
}

// adminCheck creates and deletes a topic with ClusterAdmin and checks both through
// Metadata. (ClusterAdmin.ListTopics also sends DescribeConfigs v0, which ringmq does not
// serve, like Kafka 4.0: KIP-896.)
// createOne creates a one-partition topic with its own ClusterAdmin.
func createOne(topic string) error {
	admin, err := sarama.NewClusterAdmin([]string{boot}, config())
	if err != nil {
		return err
	}
	defer admin.Close()
	return create(admin, topic, 1)
}

func adminCheck() error {
	admin, err := sarama.NewClusterAdmin([]string{boot}, config())
	if err != nil {
		return err
	}
	defer admin.Close()
	client, err := sarama.NewClient([]string{boot}, config())
	if err != nil {
		return err
	}
	defer client.Close()
	name := prefix + "-admin"
	if err := create(admin, name, 3); err != nil {
		return err
	}
	if err := client.RefreshMetadata(name); err != nil {
		return err
	}
	parts, err := client.Partitions(name)
	if err != nil {
		return err
	}
	if err := admin.DeleteTopic(name); err != nil {
		return err
	}
	if err := client.RefreshMetadata(); err != nil {
		return err
	}
	topics, err := client.Topics()
	if err != nil {
		return err
	}
	gone := true
	for _, t := range topics {
		gone = gone && t != name
	}
	ok := len(parts) == 3 && gone
	result("admin.create_delete", ok, fmt.Sprintf("CreateTopic: %d partitions in Metadata; DeleteTopic: gone=%v", len(parts), gone))
	return nil
}

// produce sends n records asynchronously (so they share batches) and returns their offsets.
func produce(topic string, t0 int64, cfg *sarama.Config) ([]int64, error) {
	p, err := sarama.NewAsyncProducer([]string{boot}, cfg)
	if err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		p.Input() <- &sarama.ProducerMessage{Topic: topic, Partition: 0, Metadata: i,
			Key: sarama.StringEncoder(fmt.Sprintf("key-%d", i)), Value: sarama.StringEncoder(fmt.Sprintf("value-%d", i)),
			Timestamp: ms(t0 + step*int64(i))}
	}
	offsets := make([]int64, n)
	for got := 0; got < n; got++ {
		select {
		case m := <-p.Successes():
			offsets[m.Metadata.(int)] = m.Offset
		case e := <-p.Errors():
			p.Close()
			return nil, e.Err
		case <-time.After(30 * time.Second):
			p.Close()
			return nil, fmt.Errorf("%d of %d acknowledged after 30 s", got, n)
		}
	}
	return offsets, p.Close()
}

func dense(offsets []int64) bool {
	for i, o := range offsets {
		if o != int64(i) {
			return false
		}
	}
	return len(offsets) == n
}

func consumeCheck(topic string, t0 int64) (bool, string, error) {
	c, err := sarama.NewConsumer([]string{boot}, config())
	if err != nil {
		return false, "", err
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		return false, "", err
	}
	defer pc.Close()
	for i := 0; i < n; i++ {
		select {
		case m := <-pc.Messages():
			want := fmt.Sprintf("%d key-%d value-%d %d", i, i, i, t0+step*int64(i))
			got := fmt.Sprintf("%d %s %s %d", m.Offset, m.Key, m.Value, m.Timestamp.UnixNano()/1e6)
			if got != want {
				return false, fmt.Sprintf("record %d: got %s", i, got), nil
			}
		case e := <-pc.Errors():
			return false, "", e
		case <-time.After(15 * time.Second):
			return false, fmt.Sprintf("read %d of %d records", i, n), nil
		}
	}
	return true, fmt.Sprintf("%d records in order, keys, values and timestamps exact", n), nil
}

func codecCheck(codec string) error {
	topic, t0 := prefix+"-"+codec, baseTs()
	if err := createOne(topic); err != nil {
		return err
	}
	cfg := config()
	cfg.Producer.Compression = compression[codec]
	offsets, err := produce(topic, t0, cfg)
	if err != nil {
		return err
	}
	result("produce."+codec, dense(offsets), fmt.Sprintf("%d acknowledged, offsets dense from 0: %v", n, dense(offsets)))
	ok, why, err := consumeCheck(topic, t0)
	if err != nil {
		return err
	}
	result("consume."+codec, ok, why)
	client, err := sarama.NewClient([]string{boot}, config())
	if err != nil {
		return err
	}
	defer client.Close()
	// ListOffsets v1; -1 (nothing at or after) for the query past the end.
	queries := [][2]int64{{t0 + step*probe - 5, probe}, {t0 + step*probe, probe}, {t0 - 1000, 0},
		{t0 + step*(n-1), n - 1}, {t0 + step*n, -1}}
	var bad []string
	for _, q := range queries {
		got, err := client.GetOffset(topic, 0, q[0])
		if err != nil {
			return err
		}
		if got != q[1] {
			bad = append(bad, fmt.Sprintf("ts %+d: want %d got %d", q[0]-t0, q[1], got))
		}
	}
	detail := strings.Join(bad, "; ")
	if detail == "" {
		detail = "5 lookups exact (inside a batch, first, last, past the end)"
	}
	result("offsets_for_time."+codec, len(bad) == 0, detail)
	return nil
}

type handler struct {
	stopAt int
	seen   []int64
	done   chan struct{}
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.seen = append(h.seen, m.Offset)
		if len(h.seen) == h.stopAt {
			s.MarkOffset(m.Topic, m.Partition, m.Offset+1, "")
			close(h.done)
			return nil
		}
	}
	return nil
}

// member joins the group, reads stopAt records, marks the next offset and leaves (Close
// commits what was marked).
func member(topic, group string, stopAt int, cfg *sarama.Config) ([]int64, error) {
	g, err := sarama.NewConsumerGroup([]string{boot}, group, cfg)
	if err != nil {
		return nil, err
	}
	h := &handler{stopAt: stopAt, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() { errs <- g.Consume(ctx, []string{topic}, h) }()
	select {
	case <-h.done:
	case err = <-errs:
	case <-time.After(30 * time.Second):
		err = fmt.Errorf("read %d of %d records in 30 s", len(h.seen), stopAt)
	}
	cancel()
	if cerr := g.Close(); err == nil {
		err = cerr
	}
	return h.seen, err
}

// commitResume: one member reads 50 records and commits, the next resumes at 50.
func commitResume(topic, group string, cfg *sarama.Config) (bool, string, error) {
	first, err := member(topic, group, 50, cfg)
	if err != nil {
		return false, "", err
	}
	next, err := member(topic, group, 1, cfg)
	if err != nil {
		return false, "", err
	}
	ok := first[0] == 0 && next[0] == 50
	return ok, fmt.Sprintf("first member read %d..%d and committed 50; next member resumed at %d", first[0], first[len(first)-1], next[0]), nil
}

func groupCheck() error {
	topic, group, t0 := prefix+"-group", prefix+"-g", baseTs()
	if err := createOne(topic); err != nil {
		return err
	}
	if _, err := produce(topic, t0, config()); err != nil {
		return err
	}
	okV2, whyV2, err := commitResume(topic, group, config())
	if err != nil {
		return err
	}
	v1 := config()
	v1.Consumer.Offsets.Retention = 0
	okV1, whyV1, err := commitResume(topic, group+"-v1", v1)
	if err != nil {
		return fmt.Errorf("OffsetCommit v1 (no retention): %v", err)
	}
	result("group.commit_resume", okV1 && okV2, "OffsetCommit v2 (retention set): "+whyV2+"; OffsetCommit v1 (no retention): "+whyV1)
	return nil
}

func idempotentCheck() error {
	topic, t0 := prefix+"-idem", baseTs()
	if err := createOne(topic); err != nil {
		return err
	}
	cfg := config()
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	offsets, err := produce(topic, t0, cfg)
	if err != nil {
		return err
	}
	ok, why, err := consumeCheck(topic, t0)
	if err != nil {
		return err
	}
	result("idempotent", ok && dense(offsets), "Producer.Idempotent: "+why)
	return nil
}

func guarded(feature string, f func() error) {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			result(feature, false, err.Error())
		}
	case <-time.After(90 * time.Second):
		result(feature, false, "no result within 90 s")
	}
}

func main() {
	boot, prefix = os.Args[1], os.Args[2]
	fmt.Printf("CLIENT\tsarama\t1.22.1\n")
	guarded("admin.create_delete", adminCheck)
	for _, codec := range codecs {
		codec := codec
		guarded("offsets_for_time."+codec, func() error { return codecCheck(codec) })
	}
	guarded("group.commit_resume", groupCheck)
	guarded("idempotent", idempotentCheck)
	fmt.Printf("RESULT\ttransactions.clear_error\tn/a\tSarama 1.22 has no transactional producer\n")
}
