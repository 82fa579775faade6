//! Checks on what a client asks for, called by the handlers before anything is routed or
//! stored. They are plain functions of the request's values (no I/O, no context), so they
//! stay with the handlers wherever the admin work itself runs.

use crate::model::is_internal_topic;
use crate::protocol::ErrorCode;

/// A refused item: the Kafka error code and a message for the client.
pub type Refusal = (ErrorCode, String);

/// What a client wants to do to a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicAction {
    Create,
    Delete,
    Produce,
    AlterConfigs,
    CreatePartitions,
    DeleteRecords,
}

/// Whether a client may do `action` to `topic`. Internal topics ([`crate::model::INTERNAL_TOPICS`])
/// are the broker's own: reading them is allowed, changing them is not. The codes are Kafka's:
/// INVALID_TOPIC_EXCEPTION for creating or appending to one, INVALID_REQUEST otherwise.
pub fn topic_action(topic: &str, action: TopicAction) -> Result<(), Refusal> {
    if !is_internal_topic(topic) {
        return Ok(());
    }
    let (code, what) = match action {
        TopicAction::Create => (ErrorCode::INVALID_TOPIC_EXCEPTION, "create"),
        TopicAction::Produce => (ErrorCode::INVALID_TOPIC_EXCEPTION, "append to"),
        TopicAction::DeleteRecords => (ErrorCode::INVALID_TOPIC_EXCEPTION, "delete records of"),
        TopicAction::Delete => (ErrorCode::INVALID_REQUEST, "delete"),
        TopicAction::AlterConfigs => (ErrorCode::INVALID_REQUEST, "alter the configs of"),
        TopicAction::CreatePartitions => (ErrorCode::INVALID_REQUEST, "add partitions to"),
    };
    Err((
        code,
        format!("cannot {what} internal topic '{topic}': it is reserved for the broker"),
    ))
}

/// Longest client id kept for a group member (DescribeGroups shows it); longer ones are cut
/// at a character boundary.
pub const CLIENT_ID_BYTES_MAX: usize = 255;

/// `client_id` cut to at most [`CLIENT_ID_BYTES_MAX`] bytes.
pub fn bounded_client_id(client_id: &str) -> String {
    let mut end = client_id.len().min(CLIENT_ID_BYTES_MAX);
    while !client_id.is_char_boundary(end) {
        end -= 1;
    }
    client_id[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use TopicAction::*;

    const ALL: [TopicAction; 6] = [
        Create,
        Delete,
        Produce,
        AlterConfigs,
        CreatePartitions,
        DeleteRecords,
    ];

    #[test]
    fn internal_topics_are_refused_for_every_change() {
        for topic in crate::model::INTERNAL_TOPICS {
            for action in ALL {
                let (code, msg) = topic_action(topic, action).unwrap_err();
                assert!(
                    code == ErrorCode::INVALID_TOPIC_EXCEPTION
                        || code == ErrorCode::INVALID_REQUEST
                );
                assert!(msg.contains(topic), "{msg}");
            }
        }
        assert_eq!(
            topic_action("__consumer_offsets", Produce).unwrap_err().0,
            ErrorCode::INVALID_TOPIC_EXCEPTION
        );
        assert_eq!(
            topic_action("__consumer_offsets", Delete).unwrap_err().0,
            ErrorCode::INVALID_REQUEST
        );
        for action in ALL {
            assert!(topic_action("_consumer_offsets", action).is_ok());
            assert!(topic_action("orders", action).is_ok());
        }
    }

    #[test]
    fn client_ids_are_cut_at_a_char_boundary() {
        assert_eq!(bounded_client_id("rdkafka"), "rdkafka");
        let long = "é".repeat(200);
        let cut = bounded_client_id(&long);
        assert!(cut.len() <= CLIENT_ID_BYTES_MAX && cut.len() >= CLIENT_ID_BYTES_MAX - 1);
        assert!(long.starts_with(&cut));
    }
}
