// segmentio/kafka-go (Debian's 0.2.1, built offline in GOPATH mode) against ringmq. kafka-go
// 0.2 speaks only old versions: Produce v2 and Fetch v2 with message sets v1, CreateTopics
// v0, ListOffsets v1, Metadata v1, the group APIs at v0-v2. It checks admin create/delete,
// produce (Writer, every codec it has: none, gzip, snappy, lz4; it has no zstd), consume
// (Reader on a partition: offsets, keys, values and timestamps), offsets for a timestamp
// (Conn.ReadOffset), and a consumer group that commits and resumes (Reader with GroupID).
// It has no idempotent or transactional producer.
// Usage: kafkago BOOTSTRAP PREFIX. Output: see tests/clients/compat/common.py.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/gzip"
	"github.com/segmentio/kafka-go/lz4"
	"github.com/segmentio/kafka-go/snappy"
)

const (
	n     = 200
	probe = 111
	step  = 10
)

var (
	boot, prefix string
	codecs       = []string{"none", "gzip", "snappy", "lz4"}
	compression  = map[string]kafka.CompressionCodec{"none": nil,
		"gzip": gzip.NewCompressionCodec(), "snappy": snappy.NewCompressionCodec(),
		"lz4": lz4.NewCompressionCodec()}
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

func na(feature, why string) { fmt.Printf("RESULT\t%s\tn/a\t%s\n", feature, why) }

func baseTs() int64 { return time.Now().UnixNano()/1e6 - 60000 }

func ms(t int64) time.Time { return time.Unix(0, t*1e6) }

func dial() (*kafka.Conn, error) { return kafka.Dial("tcp", boot) }

func leader(topic string) (*kafka.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return kafka.DialLeader(ctx, "tcp", boot, topic, 0)
}

func create(topic string, partitions int) error {
	c, err := dial()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1})
}

func adminCheck() error {
	name := prefix + "-admin"
	if err := create(name, 3); err != nil {
		return err
	}
	c, err := dial()
	if err != nil {
		return err
	}
	defer c.Close()
	parts, err := c.ReadPartitions(name)
	if err != nil {
		return err
	}
	if err := c.DeleteTopics(name); err != nil {
		return err
	}
	// Naming a topic in Metadata v1 creates it again (auto-creation is on) and kafka-go's
	// CreateTopics ignores TOPIC_ALREADY_EXISTS, so deletion is proven by creating the name
	// again with 5 partitions: had the 3-partition topic survived, it would still have 3.
	if err := create(name, 5); err != nil {
		return err
	}
	again, err := c.ReadPartitions(name)
	if err != nil {
		return err
	}
	if err := c.DeleteTopics(name); err != nil {
		return err
	}
	ok := len(parts) == 3 && len(again) == 5
	result("admin.create_delete", ok, fmt.Sprintf("CreateTopics v0: %d partitions in Metadata; after DeleteTopics v1 the name was created again with %d (want 5)", len(parts), len(again)))
	return nil
}

// produce writes n records with a Writer (batches of 50, acks=all) and checks the log's end.
func produce(topic string, t0 int64, codec kafka.CompressionCodec) (bool, string, error) {
	w := kafka.NewWriter(kafka.WriterConfig{Brokers: []string{boot}, Topic: topic,
		BatchSize: 50, BatchTimeout: 50 * time.Millisecond, RequiredAcks: -1,
		CompressionCodec: codec, MaxAttempts: 3})
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("key-%d", i)),
			Value: []byte(fmt.Sprintf("value-%d", i)), Time: ms(t0 + step*int64(i))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		w.Close()
		return false, "", err
	}
	if err := w.Close(); err != nil {
		return false, "", err
	}
	c, err := leader(topic)
	if err != nil {
		return false, "", err
	}
	defer c.Close()
	first, last, err := c.ReadOffsets()
	if err != nil {
		return false, "", err
	}
	ok := first == 0 && last == n
	return ok, fmt.Sprintf("%d acknowledged (Produce v2, message sets v1); log offsets %d..%d", n, first, last), nil
}

func consumeCheck(topic string, t0 int64) (bool, string, error) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{boot}, Topic: topic,
		Partition: 0, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			return false, fmt.Sprintf("read %d of %d records: %v", i, n, err), nil
		}
		want := fmt.Sprintf("%d key-%d value-%d %d", i, i, i, t0+step*int64(i))
		got := fmt.Sprintf("%d %s %s %d", m.Offset, m.Key, m.Value, m.Time.UnixNano()/1e6)
		if got != want {
			return false, fmt.Sprintf("record %d: got %s", i, got), nil
		}
	}
	return true, fmt.Sprintf("%d records in order (Fetch v2), keys, values and timestamps exact", n), nil
}

func offsetsCheck(topic string, t0 int64) (bool, string, error) {
	c, err := leader(topic)
	if err != nil {
		return false, "", err
	}
	defer c.Close()
	// ListOffsets v1; -1 (nothing at or after) for the query past the end.
	queries := [][2]int64{{t0 + step*probe - 5, probe}, {t0 + step*probe, probe}, {t0 - 1000, 0},
		{t0 + step*(n-1), n - 1}, {t0 + step*n, -1}}
	var bad []string
	for _, q := range queries {
		got, err := c.ReadOffset(ms(q[0]))
		if err != nil {
			return false, "", err
		}
		if got != q[1] {
			bad = append(bad, fmt.Sprintf("ts %+d: want %d got %d", q[0]-t0, q[1], got))
		}
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; "), nil
	}
	return true, "5 lookups exact (inside a batch, first, last, past the end)", nil
}

func codecCheck(codec string) error {
	topic, t0 := prefix+"-"+codec, baseTs()
	if err := create(topic, 1); err != nil {
		return err
	}
	checks := []struct {
		feature string
		run     func() (bool, string, error)
	}{
		{"produce.", func() (bool, string, error) { return produce(topic, t0, compression[codec]) }},
		{"consume.", func() (bool, string, error) { return consumeCheck(topic, t0) }},
		{"offsets_for_time.", func() (bool, string, error) { return offsetsCheck(topic, t0) }},
	}
	for _, c := range checks {
		ok, why, err := c.run()
		if err != nil {
			return err
		}
		result(c.feature+codec, ok, why)
	}
	return nil
}

// member joins the group, reads (and commits, ReadMessage does) stopAt records, and leaves.
func member(topic, group string, stopAt int) ([]int64, error) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{boot}, GroupID: group,
		Topic: topic, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond,
		SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second,
		RebalanceTimeout: 10 * time.Second})
	var seen []int64
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	for len(seen) < stopAt {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			r.Close()
			return seen, fmt.Errorf("read %d of %d records: %v", len(seen), stopAt, err)
		}
		seen = append(seen, m.Offset)
	}
	return seen, r.Close()
}

func groupCheck() error {
	topic, group, t0 := prefix+"-group", prefix+"-g", baseTs()
	if err := create(topic, 1); err != nil {
		return err
	}
	if _, _, err := produce(topic, t0, nil); err != nil {
		return err
	}
	first, err := member(topic, group, 50)
	if err != nil {
		return err
	}
	next, err := member(topic, group, 1)
	if err != nil {
		return err
	}
	ok := first[0] == 0 && first[49] == 49 && next[0] == 50
	result("group.commit_resume", ok, fmt.Sprintf("first member read %d..%d, committing each (OffsetCommit v2); next member resumed at %d", first[0], first[len(first)-1], next[0]))
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
	fmt.Printf("CLIENT\tkafka-go\t0.2.1\n")
	guarded("admin.create_delete", adminCheck)
	for _, codec := range codecs {
		codec := codec
		guarded("offsets_for_time."+codec, func() error { return codecCheck(codec) })
	}
	for _, f := range []string{"produce.zstd", "consume.zstd", "offsets_for_time.zstd"} {
		na(f, "kafka-go 0.2 has no zstd codec")
	}
	guarded("group.commit_resume", groupCheck)
	na("idempotent", "kafka-go 0.2 has no idempotent producer")
	na("transactions.clear_error", "kafka-go 0.2 has no transactional producer")
}
