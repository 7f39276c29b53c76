/**
 * The demo's crashing child: it traces a few requests' worth of events with a flight recorder
 * on, then throws. The recorder writes its buffers to the directory given before Node reports
 * the error and exits with code 1, as it would have anyway.
 */
import { Tracer, flightRecorder } from '../index.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: demo-crash DIR');
const tracer = new Tracer();
const step = tracer.defineEvent('checkout', 'step', { order: 'u32', stage: 'string' });
tracer.write('events/enable', '1');
flightRecorder(tracer, { dir });
const stages = ['cart', 'address', 'payment', 'confirm'];
for (let order = 1; order <= 3; order++) for (const stage of stages) step.emit({ order, stage });
step.emit({ order: 4, stage: 'payment' });
setTimeout(() => {
  throw new Error('payment provider returned nothing for order 4');
}, 1);
