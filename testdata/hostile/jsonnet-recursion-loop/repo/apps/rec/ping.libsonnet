{
  ping(n):: self.pong(n + 1),
  pong(n):: [self.ping(n + 1)],
}
