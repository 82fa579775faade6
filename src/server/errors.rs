//! The one place where internal errors become Kafka error codes.

use crate::protocol::ErrorCode;
use crate::records::RecordsError;
use crate::router::{AdminError, PartitionError};

/// The partition error for records that could not be read or converted (message sets v0/v1):
/// a checksum mismatch is CORRUPT_MESSAGE, a decompression bomb MESSAGE_TOO_LARGE, anything
/// else INVALID_RECORD.
pub fn records_error(e: &RecordsError) -> PartitionError {
    match e {
        RecordsError::Corrupt => PartitionError::CorruptMessage("message checksum mismatch".into()),
        RecordsError::TooLarge => PartitionError::MessageTooLarge {
            bytes: crate::records::MAX_DECOMPRESSED_BYTES + 1,
            max_bytes: crate::records::MAX_DECOMPRESSED_BYTES,
        },
        RecordsError::Malformed(what) => PartitionError::InvalidRecord(format!("bad {what}")),
        RecordsError::UnsupportedCompression(codec) => {
            PartitionError::InvalidRecord(format!("unknown compression codec {codec}"))
        }
    }
}

/// Kafka error code for a partition-level failure.
pub fn partition_error_code(e: &PartitionError) -> ErrorCode {
    match e {
        PartitionError::UnknownTopicOrPartition => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        PartitionError::NotLeader => ErrorCode::NOT_LEADER_OR_FOLLOWER,
        PartitionError::CorruptMessage(_) => ErrorCode::CORRUPT_MESSAGE,
        PartitionError::InvalidRecord(_) => ErrorCode::INVALID_RECORD,
        PartitionError::MessageTooLarge { .. } => ErrorCode::MESSAGE_TOO_LARGE,
        PartitionError::OutOfOrderSequence(_) => ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
        PartitionError::InvalidProducerEpoch(_) => ErrorCode::INVALID_PRODUCER_EPOCH,
        PartitionError::OffsetOutOfRange { .. } => ErrorCode::OFFSET_OUT_OF_RANGE,
        PartitionError::Storage(_) => ErrorCode::KAFKA_STORAGE_ERROR,
        PartitionError::NotDurable(_) => ErrorCode::REQUEST_TIMED_OUT,
        PartitionError::ShuttingDown => ErrorCode::NOT_LEADER_OR_FOLLOWER,
    }
}

/// A message for the client, where the API has room for one.
pub fn partition_error_message(e: &PartitionError) -> Option<String> {
    match e {
        PartitionError::UnknownTopicOrPartition | PartitionError::ShuttingDown => None,
        PartitionError::NotLeader => Some("this broker does not lead the partition".into()),
        other => Some(other.to_string()),
    }
}

/// Kafka error code and message for an admin failure.
pub fn admin_error_code(e: &AdminError) -> (ErrorCode, String) {
    match e {
        AdminError::TopicAlreadyExists(m) => (ErrorCode::TOPIC_ALREADY_EXISTS, m.clone()),
        AdminError::UnknownTopic(m) => (ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, m.clone()),
        AdminError::InvalidTopic(m) => (ErrorCode::INVALID_TOPIC_EXCEPTION, m.clone()),
        AdminError::InvalidPartitions(m) => (ErrorCode::INVALID_PARTITIONS, m.clone()),
        AdminError::InvalidConfig(m) => (ErrorCode::INVALID_CONFIG, m.clone()),
        AdminError::InvalidReplicationFactor(m) => {
            (ErrorCode::INVALID_REPLICATION_FACTOR, m.clone())
        }
        AdminError::Storage(m) => (ErrorCode::KAFKA_STORAGE_ERROR, m.clone()),
        AdminError::Unavailable(m) => (ErrorCode::REQUEST_TIMED_OUT, m.clone()),
        AdminError::ResourceNotFound(m) => (ErrorCode::RESOURCE_NOT_FOUND, m.clone()),
        AdminError::UnacceptableCredential(m) => (ErrorCode::UNACCEPTABLE_CREDENTIAL, m.clone()),
        AdminError::InvalidRequest(m) => (ErrorCode::INVALID_REQUEST, m.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_kafkas() {
        assert_eq!(
            partition_error_code(&PartitionError::CorruptMessage("x".into())).0,
            2
        );
        assert_eq!(
            partition_error_code(&PartitionError::UnknownTopicOrPartition).0,
            3
        );
        assert_eq!(
            partition_error_code(&PartitionError::MessageTooLarge {
                bytes: 2,
                max_bytes: 1
            })
            .0,
            10
        );
        assert_eq!(
            partition_error_code(&PartitionError::Storage("eio".into())).0,
            56
        );
        assert_eq!(
            partition_error_code(&PartitionError::NotDurable("enospc".into())).0,
            7,
            "stored but not synced: possibly stored, never 'failed'"
        );
        let code = |e| partition_error_code(&records_error(&e)).0;
        assert_eq!(code(RecordsError::Corrupt), 2);
        assert_eq!(code(RecordsError::TooLarge), 10);
        assert_eq!(code(RecordsError::Malformed("x")), 87);
        assert_eq!(code(RecordsError::UnsupportedCompression(7)), 87);
        assert_eq!(
            admin_error_code(&AdminError::TopicAlreadyExists("t".into()))
                .0
                 .0,
            36
        );
        assert_eq!(
            admin_error_code(&AdminError::InvalidPartitions("p".into()))
                .0
                 .0,
            37
        );
        assert_eq!(
            admin_error_code(&AdminError::Unavailable("no quorum".into()))
                .0
                 .0,
            7,
            "no controller quorum: REQUEST_TIMED_OUT, which clients retry"
        );
    }
}
