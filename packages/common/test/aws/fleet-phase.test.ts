/** The backend-neutral phase of an Auto Scaling instance (pure, no moto needed). */
import { describe, expect, it } from 'vitest';
import { phaseOf } from '../../src/aws/fleet-view.js';

describe('phaseOf', () => {
  it('maps every Auto Scaling lifecycle state onto starting, running, leaving or gone', () => {
    const cases: Record<string, string> = {
      Pending: 'starting',
      'Pending:Wait': 'starting',
      'Pending:Proceed': 'starting',
      Quarantined: 'starting',
      'Warmed:Pending': 'starting',
      'Warmed:Pending:Wait': 'starting',
      'Warmed:Running': 'starting',
      'Warmed:Stopped': 'starting',
      InService: 'running',
      EnteringStandby: 'running',
      Standby: 'running',
      Terminating: 'leaving',
      'Terminating:Wait': 'leaving',
      'Terminating:Proceed': 'leaving',
      Detaching: 'leaving',
      'Warmed:Terminating': 'leaving',
      'Warmed:Terminating:Wait': 'leaving',
      Terminated: 'gone',
      Detached: 'gone',
      'Warmed:Terminated': 'gone',
    };
    for (const [state, phase] of Object.entries(cases)) expect(phaseOf(state), state).toBe(phase);
    expect(phaseOf(undefined)).toBe('starting');
  });
});
