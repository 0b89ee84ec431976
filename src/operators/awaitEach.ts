import { concatMap, from, last, map, type ObservableInput, type OperatorFunction } from 'rxjs';

/**
 * For each value, in order: runs `effect(value)`, waits for it to finish, and emits
 * `project(value, result)`. The shape every await-style step of the chain shares
 * (persist, commit, publish, dead-letter, acknowledge).
 *
 * <span class="informal">A `concatMap` over `from(effect)`, keeping only the effect's last
 * value: a promise's result, or `undefined` when the effect completed without a value.</span>
 *
 * The next value's effect starts only once this one is done, so side effects happen in
 * the order of the values (Vector's ordered acknowledgements). An effect's error, thrown
 * or emitted, errors the stream, and so does an exception of `project`.
 *
 * ```
 * values:   -a-b-|          each effect takes 2 frames
 * result:   ---x--y|        x = project(a, result of a), y = project(b, result of b)
 * ```
 *
 * @param effect One value's side effect: a promise, an observable, anything `from` takes.
 * @param project What to emit once it is done, from the value and the effect's last result.
 */
export function awaitEach<T, R, O>(effect: (value: T) => ObservableInput<R>, project: (value: T, result: R | undefined) => O): OperatorFunction<T, O> {
  return concatMap((value) =>
    from(effect(value)).pipe(
      last(null, undefined),
      map((result) => project(value, result)),
    ),
  );
}
