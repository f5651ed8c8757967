import { MemoryGateState } from '../../src/gate/memory-state.js';
import { stateContract } from './state-contract.js';

stateContract('memory', (_t, setup) => new MemoryGateState(setup));
