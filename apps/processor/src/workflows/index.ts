/** The workflows the processor app registers. Add yours here. */
import type { AnyWorkflow } from '@durable/core';
import { customWorkflow } from './greet-many.js';
import { helloWorkflow } from './hello.js';
import { nap } from './nap.js';
import { orderProcessing } from './order-processing.js';

export { customWorkflow, helloWorkflow, nap, orderProcessing };

/** Every workflow of the processor app. */
export const workflows: AnyWorkflow[] = [helloWorkflow, customWorkflow, orderProcessing, nap];
