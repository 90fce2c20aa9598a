/**
 * The worker's scale-in protection as AWS holds it. The state changes only after the fleet
 * accepted the call, never when it is asked for: after a refusal (throttling, an instance not yet
 * InService, a network error) the worker still knows it is not protected and asks again before
 * its next task, instead of running it unprotected while believing otherwise.
 */
export type SetProtection = (on: boolean) => Promise<void>;

export class ScaleInProtection {
  private current = false;

  constructor(
    private readonly set: SetProtection,
    private readonly onError: (err: unknown, on: boolean) => void,
  ) {}

  /** What AWS last accepted. */
  get isOn(): boolean {
    return this.current;
  }

  /** Ask for `on`; true when AWS holds that state afterwards. */
  async want(on: boolean): Promise<boolean> {
    if (this.current === on) return true;
    try {
      await this.set(on);
      this.current = on;
      return true;
    } catch (err) {
      this.onError(err, on);
      return false;
    }
  }
}
