//! Reboot tests of the nodes that keep nothing durable: API nodes and
//! controllers, driven through their public constructors and messages.
