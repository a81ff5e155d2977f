// A key's Redis Cluster hash slot, computed where the client is: ioredis's own function (hash
// tags included), so placing keys asks the server nothing.
import { Command } from 'ioredis';

export function keySlot(key: string): number {
  return new Command('exists', [key]).getSlot() ?? 0;
}
