// kafkajs 2.2 schedules timers with negative delays, which Node ≥ 23 reports as a
// TimeoutNegativeWarning (the timer still fires at once). The tests that drive kafkajs
// directly would print it; every other warning still shows.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'TimeoutNegativeWarning') process.stderr.write(`${warning.name}: ${warning.message}\n`);
});
