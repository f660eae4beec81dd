"""Built-in controllers with compiled twins, in the settings the twin tests share."""

from closedloop.controllers import PID, DualThreshold, OnOff, OpenLoop, SymptomTriggered

#: One of each twin kind (PID twice: with and without the derivative term).
TWIN_CONTROLLERS = [
    OpenLoop(amplitude_ma=1.7, frequency_hz=140.0, pulse_width_us=90.0),
    OnOff(threshold=30.0, amplitude_ma=2.5, ramp_time_s=0.1),
    DualThreshold(
        lower_threshold=20.0,
        upper_threshold=35.0,
        ramp_up_ma_per_s=3.0,
        ramp_down_ma_per_s=1.5,
        min_amplitude_ma=0.2,
        max_amplitude_ma=3.0,
    ),
    PID(setpoint=30.0, kp=0.05, ki=0.4, max_amplitude_ma=3.0),
    PID(setpoint=30.0, kp=0.05, ki=0.4, kd=0.002, min_amplitude_ma=0.5, max_amplitude_ma=2.5),
    SymptomTriggered(threshold=33.0, min_duration_s=0.02, burst_s=0.1, frequency_hz=130.0),
    SymptomTriggered(threshold=28.0, direction="below", burst_s=0.05, amplitude_ma=2.0),
]

#: The twins Brian2 code can express (closedloop.brian.codegen): its generated
#: device delivers continuous pulse trains only, so the burst-issuing twins
#: (symptom_triggered) are left out.
BRIAN_CODE_TWIN_CONTROLLERS = [c for c in TWIN_CONTROLLERS if not isinstance(c, SymptomTriggered)]
