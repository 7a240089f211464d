-- Reverses 0003_control_plane.
DROP TABLE IF EXISTS deployment_steps;
DROP TABLE IF EXISTS deployments;
DROP TABLE IF EXISTS providers;
DROP TABLE IF EXISTS autoscaling_state;
DROP TABLE IF EXISTS policies;
