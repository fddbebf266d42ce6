/**
 * `make chaos`: many workflows through three processors on a 3-node cluster of its own,
 * while processors are killed, stopped, added and removed, the node leading the busiest
 * stream is killed, a stream leader's node is cut off and healed (as root: nodes in network
 * namespaces), HelloService goes down and malformed input arrives; then a table of what was
 * lost, failed, recorded twice or run out of order (stdout). Exits 1 when any of those is not
 * zero. Progress goes to stderr.
 *
 * Env: CHAOS_WORKFLOWS (default 1,000), CHAOS_SHORT=1 (~150, as the test suite runs it),
 * CHAOS_NATS_PORT (client ports 22522-22524; routes +2000, monitoring +4000),
 * CHAOS_APP_PORT (HelloService 29500, TicketService 29501, processors' HTTP 29510..),
 * CHAOS_PROCESSOR_ARGS (extra processor flags), CHAOS_LOG_DIR (default a temp dir).
 */
import { formatReport, verdict } from './chaos/report.js';
import { runChaos } from './chaos/run.js';
import { settingsFromEnv } from './chaos/settings.js';

const report = await runChaos(settingsFromEnv());
console.log(formatReport(report));
const failures = verdict(report);
if (failures.length > 0) {
  console.log(`\nFAILED: ${failures.join(', ')}`);
  process.exit(1);
}
console.log('\nPASSED: nothing lost, nothing recorded twice, order and exclusivity held');
process.exit(0);
