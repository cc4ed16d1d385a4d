#[test]
fn sizes() {
    use std::mem::size_of;
    eprintln!("Msg {}", size_of::<plane::protocol::Msg>());
    eprintln!("Value {}", size_of::<plane::protocol::Value>());
    eprintln!("Event {}", size_of::<plane::protocol::Event>());
    eprintln!("Timer {}", size_of::<plane::protocol::Timer>());
    eprintln!(
        "Command {}",
        size_of::<node::Command<plane::protocol::ControlPlane>>()
    );
    eprintln!("ApiReply {}", size_of::<plane::protocol::ApiReply>());
    eprintln!("ApiRequest {}", size_of::<plane::protocol::ApiRequest>());
}
